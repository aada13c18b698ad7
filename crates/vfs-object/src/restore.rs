//! Point-in-time restore: a past version written out as a new database in
//! the store (one full-image commit at LSN 1) or as a plain SQLite file
//! (`docs/object.md`, §11).

use std::collections::BTreeMap;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use vfs_core::{Error, Result, codes};

use crate::client::FailureKind;
use crate::db::{Ctx, Db, FETCH_CONCURRENCY, store_error};
use crate::format::{self, FLAG_FULL_IMAGE};
use crate::history::{At, list_log, state_at};
use crate::keys::DbKeys;
use crate::version::{CommitInfo, Version};
use crate::{ObjectVfs, normalise};

/// Where [`ObjectVfs::restore`] writes the version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RestoreTarget {
    /// A new database of the same store and prefix (refused if it has any
    /// commit): written as one full-image commit at LSN 1.
    Database(String),
    /// A plain SQLite file on the local file system (refused if it exists):
    /// written under a temporary name beside it, synced, then linked under
    /// its final name, so a crash never leaves a partial file there.
    File(PathBuf),
}

/// What [`ObjectVfs::restore`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Restored {
    /// The LSN restored (for [`At::Time`], the one the time named).
    pub lsn: u64,
    /// Database size in bytes.
    pub db_size: u64,
    /// Pages written (holes, which read as zeros, are not stored).
    pub pages: u64,
}

/// Adjacent stored pages of one commit read with one range GET; runs
/// further apart than this many entries are read separately.
const MAX_GAP_ENTRIES: u32 = 8;
/// Range reads issued and held in memory at once while restoring.
const READS_PER_BATCH: usize = 4 * FETCH_CONCURRENCY;

/// A stored page to read: `(entry in its commit, chunk, CRC-32)`.
type PageRef = (u32, u64, u32);

/// Pages of one commit read with one range GET.
struct RangeRead {
    commit: Arc<CommitInfo>,
    first_entry: u32,
    /// By entry.
    pages: Vec<PageRef>,
}

impl RangeRead {
    fn range(&self) -> std::ops::Range<u64> {
        let c = u64::from(self.commit.chunk_size);
        let last = self.pages.last().map_or(self.first_entry, |p| p.0);
        let start = self.commit.data_offset + u64::from(self.first_entry) * c;
        start..self.commit.data_offset + (u64::from(last) + 1) * c
    }
}

/// Calls `sink(chunk, bytes)` for every stored page of `v` (holes are
/// skipped): cached pages first, then one range GET per run of a commit's
/// pages, [`FETCH_CONCURRENCY`] at once, each page checked against its
/// CRC. Returns the number of pages.
fn for_each_page(
    ctx: &Ctx,
    db: &Db,
    v: &Version,
    mut sink: impl FnMut(u64, &[u8]) -> Result<()>,
) -> Result<u64> {
    let count = if v.chunk_size == 0 {
        0
    } else {
        v.size.div_ceil(u64::from(v.chunk_size))
    };
    let mut pages = 0u64;
    // By object: the pages of one snapshot LSN may be in several groups.
    type ObjectId = (u64, bool, Option<u32>);
    let mut by_commit: BTreeMap<ObjectId, (Arc<CommitInfo>, Vec<PageRef>)> = BTreeMap::new();
    for chunk in 0..count {
        let Some(page) = v.page(chunk) else { continue };
        pages += 1;
        match page.cached() {
            Some(bytes) => sink(chunk, &bytes)?,
            None => by_commit
                .entry((page.lsn(), page.commit.snapshot, page.commit.group))
                .or_insert_with(|| (Arc::clone(&page.commit), Vec::new()))
                .1
                .push((page.entry, chunk, page.crc)),
        }
    }
    let mut reads = Vec::new();
    for (_, (commit, mut entries)) in by_commit {
        entries.sort_unstable();
        let mut run: Option<RangeRead> = None;
        for e in entries {
            match &mut run {
                Some(r)
                    if e.0 - r.pages.last().map_or(r.first_entry, |p| p.0) <= MAX_GAP_ENTRIES =>
                {
                    r.pages.push(e)
                }
                _ => {
                    reads.extend(run.take());
                    run = Some(RangeRead {
                        commit: Arc::clone(&commit),
                        first_entry: e.0,
                        pages: vec![e],
                    });
                }
            }
        }
        reads.extend(run);
    }
    let mut reads = reads.into_iter().peekable();
    while reads.peek().is_some() {
        let batch: Vec<RangeRead> = reads.by_ref().take(READS_PER_BATCH).collect();
        let client = ctx.client.clone();
        let keys = db.keys.clone();
        let requests: Vec<_> = batch
            .iter()
            .map(|r| (keys.object_of(&r.commit), r.range()))
            .collect();
        let fetched: Vec<_> = ctx.runtime.run(async move {
            futures::stream::iter(requests.into_iter().map(|(key, range)| {
                let client = client.clone();
                async move { client.get_range(&key, range).await }
            }))
            .buffered(FETCH_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
        })?;
        for (read, got) in batch.iter().zip(fetched) {
            let bytes = got.map_err(|e| store_error(codes::SQLITE_IOERR_READ, &db.name, &e))?;
            let c = read.commit.chunk_size as usize;
            for &(entry, chunk, crc) in &read.pages {
                let at = (entry - read.first_entry) as usize * c;
                let page = bytes.get(at..at + c).filter(|p| format::check_page(crc, p));
                let Some(page) = page else {
                    return Err(Error::new(
                        codes::SQLITE_IOERR_DATA,
                        format!(
                            "vfs-object: {:?}: page {chunk} in {} fails its CRC-32",
                            db.name,
                            db.keys.object_of(&read.commit)
                        ),
                    ));
                };
                sink(chunk, page)?;
            }
        }
    }
    Ok(pages)
}

impl ObjectVfs {
    /// Writes database `name` as it was at `at` to `target`: a new
    /// database in this store, or a plain SQLite file.
    ///
    /// Costs: the version's resolution (⌈c/1000⌉ + 1 LIST, the index of
    /// the newest snapshot at or below it and one GET per commit after
    /// that snapshot; for [`At::Time`] ⌈log₂ v⌉ + 1 GETs more to find the
    /// version among `v`), then one range GET per run of pages still
    /// current from each commit or snapshot (pages already cached cost
    /// nothing), then for a database target one LIST (it must not exist)
    /// and one conditional PUT. A database of several GB needs
    /// a store that accepts one PUT of that size (S3: 5 GB).
    ///
    /// What is restored is the stored bytes: a database written through
    /// `vfs-crypto` over this backend restores as ciphertext, readable
    /// with the same key through `vfs-crypto` over any VFS.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::memory::InMemory;
    /// use vfs_object::{At, ObjectOptions, ObjectVfs, RestoreTarget};
    ///
    /// let vfs = ObjectVfs::new(Arc::new(InMemory::new()), "", ObjectOptions::default()).unwrap();
    /// let reg = vfs_core::register("object-restore-doc", vfs.clone(), false).unwrap();
    /// let c = rusqlite::Connection::open("file:/r.db?vfs=object-restore-doc").unwrap();
    /// c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1); DELETE FROM t;").unwrap();
    /// // LSN 2 still had the row.
    /// vfs.restore("/r.db", At::Lsn(2), &RestoreTarget::Database("/before.db".into())).unwrap();
    /// let b = rusqlite::Connection::open("file:/before.db?vfs=object-restore-doc").unwrap();
    /// let n: i64 = b.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
    /// assert_eq!(n, 1);
    /// drop((c, b));
    /// reg.unregister().unwrap();
    /// ```
    ///
    /// Errors: the version's (`SQLITE_ERROR` naming an LSN that does not
    /// exist or is no longer retained, or a time older than every retained
    /// commit; `SQLITE_IOERR_READ`/`SQLITE_CORRUPT`/`SQLITE_IOERR_DATA`
    /// for failed requests and damaged objects); `SQLITE_CANTOPEN` when the
    /// target exists (or is the source); `SQLITE_IOERR_WRITE` when it
    /// cannot be written, saying whether anything was left behind.
    pub fn restore(&self, name: &str, at: At, target: &RestoreTarget) -> Result<Restored> {
        let db = self.db(name)?;
        let ctx = &self.shared.ctx;
        let version = state_at(ctx, &db, at)
            .map_err(|e| e.into_error(&db.name, codes::SQLITE_IOERR_READ, codes::SQLITE_ERROR))?;
        let pages = match target {
            RestoreTarget::Database(to) => self.restore_to_database(&db, &version, to)?,
            RestoreTarget::File(path) => restore_to_file(ctx, &db, &version, path)?,
        };
        Ok(Restored {
            lsn: version.lsn,
            db_size: version.size,
            pages,
        })
    }

    fn restore_to_database(&self, db: &Db, version: &Version, to: &str) -> Result<u64> {
        let to = normalise(to);
        if to == db.name {
            return Err(Error::cant_open(format!(
                "vfs-object: cannot restore {:?} onto itself; restore into a new name",
                db.name
            )));
        }
        let ctx = &self.shared.ctx;
        let keys = DbKeys::new(&self.shared.prefix, &to)?;
        let client = ctx.client.clone();
        let k = keys.clone();
        let existing = ctx
            .runtime
            .run(async move { list_log(&client, &k).await })?
            .map_err(|e| store_error(codes::SQLITE_IOERR_READ, &to, &e))?;
        if let Some(last) = existing.last() {
            return Err(Error::cant_open(format!(
                "vfs-object: cannot restore into {to:?}: that database exists (LSN {}); \
                 restore into a new name",
                last.lsn
            )));
        }
        let mut image: Vec<(u32, Vec<u8>)> = Vec::new();
        let pages = for_each_page(ctx, db, version, |chunk, bytes| {
            image.push((chunk as u32, bytes.to_vec()));
            Ok(())
        })?;
        // A full image stores every chunk: holes (never written, read as
        // zeros) become zero pages.
        let chunk_size = if version.chunk_size == 0 {
            // A version with no page yet (only void commits) has no chunk
            // size; any valid one describes an empty image.
            4096
        } else {
            version.chunk_size
        };
        let count = version.size.div_ceil(u64::from(chunk_size));
        if image.len() as u64 != count {
            let stored: std::collections::HashSet<u32> = image.iter().map(|p| p.0).collect();
            let zeros = vec![0u8; chunk_size as usize];
            for c in 0..count as u32 {
                if !stored.contains(&c) {
                    image.push((c, zeros.clone()));
                }
            }
        }
        image.sort_unstable_by_key(|p| p.0);
        let pairs: Vec<(u32, &[u8])> = image.iter().map(|(c, b)| (*c, &b[..])).collect();
        let txid: [u8; 16] = rand::random();
        let body = format::encode(&format::NewCommit {
            lsn: 1,
            txid,
            db_size: version.size,
            chunk_size,
            time_ms: crate::file::now_ms(),
            flags: FLAG_FULL_IMAGE,
            pages: &pairs,
        });
        drop(image);
        let client = ctx.client.clone();
        let key = keys.commit(1);
        let k = key.clone();
        let outcome = ctx.runtime.run(async move {
            let put = client.put_create(&k, Bytes::from(body)).await;
            match put {
                Ok(()) => Ok(true),
                // Exists: a retry after a lost response, or another
                // creator. Ambiguous failures: the object says.
                Err(e) if e.kind == FailureKind::Permanent => Err(e),
                Err(e) => match client.get_range(&k, 0..format::HEADER_LEN as u64).await {
                    Ok(h) => Ok(format::decode_header(&h).is_ok_and(|h| h.txid == txid)),
                    Err(g) if g.kind == FailureKind::NotFound => Err(e),
                    Err(g) => Err(g),
                },
            }
        })?;
        // This process may have looked at `to` before it existed: its next
        // read transaction looks again whatever the poll interval.
        if let Some(d) = self.shared.dbs.lock().get(&to) {
            d.mark_refresh_due();
        }
        match outcome {
            Ok(true) => Ok(pages),
            Ok(false) => Err(Error::cant_open(format!(
                "vfs-object: cannot restore into {to:?}: another writer created it meanwhile \
                 ({key} exists); nothing was written"
            ))),
            Err(e) => Err(store_error(codes::SQLITE_IOERR_WRITE, &to, &e)),
        }
    }
}

/// Writes `version` to a temporary file beside `path`, syncs it, then
/// links it as `path` (which must not exist).
fn restore_to_file(ctx: &Ctx, db: &Db, version: &Version, path: &FsPath) -> Result<u64> {
    let io_err = |what: &str, e: std::io::Error| {
        Error::new(
            codes::SQLITE_IOERR_WRITE,
            format!("vfs-object: restoring {:?}: {what}: {e}", db.name),
        )
    };
    if path.symlink_metadata().is_ok() {
        return Err(Error::cant_open(format!(
            "vfs-object: cannot restore {:?} to {}: the file exists",
            db.name,
            path.display()
        )));
    }
    let file_name = path.file_name().ok_or_else(|| {
        Error::cant_open(format!(
            "vfs-object: cannot restore to {}: not a file name",
            path.display()
        ))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let tag: u64 = rand::random();
    let tmp = dir.join(format!(
        ".{}.restore-{tag:016x}",
        file_name.to_string_lossy()
    ));
    let written = write_image(ctx, db, version, &tmp).and_then(|pages| {
        // A hard link never replaces an existing file (a rename would).
        std::fs::hard_link(&tmp, path).map_err(|e| {
            let what = if e.kind() == std::io::ErrorKind::AlreadyExists {
                "the file was created meanwhile".to_owned()
            } else {
                format!("linking {} as {}", tmp.display(), path.display())
            };
            io_err(&what, e)
        })?;
        Ok(pages)
    });
    let _ = std::fs::remove_file(&tmp);
    let pages = written?;
    if let Ok(d) = std::fs::File::open(&dir) {
        // Makes the new name durable where the platform allows it.
        let _ = d.sync_all();
    }
    Ok(pages)
}

fn write_image(ctx: &Ctx, db: &Db, version: &Version, tmp: &FsPath) -> Result<u64> {
    let io_err = |what: String, e: std::io::Error| {
        Error::new(
            codes::SQLITE_IOERR_WRITE,
            format!("vfs-object: restoring {:?}: {what}: {e}", db.name),
        )
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(tmp)
        .map_err(|e| io_err(format!("creating {}", tmp.display()), e))?;
    // Holes stay zeros.
    f.set_len(version.size)
        .map_err(|e| io_err(format!("sizing {}", tmp.display()), e))?;
    let c = u64::from(version.chunk_size);
    let pages = for_each_page(ctx, db, version, |chunk, bytes| {
        f.seek(SeekFrom::Start(chunk * c))
            .and_then(|_| f.write_all(bytes))
            .map_err(|e| io_err(format!("writing {}", tmp.display()), e))
    })?;
    // A last chunk reaching past the size (never for SQLite's files) is cut.
    f.set_len(version.size)
        .map_err(|e| io_err(format!("sizing {}", tmp.display()), e))?;
    f.sync_all()
        .map_err(|e| io_err(format!("syncing {}", tmp.display()), e))?;
    Ok(pages)
}
