//! Compaction (writing `snap/<LSN>`) and garbage collection (deleting what
//! no retained state needs): `docs/object.md`, §14.

use std::collections::BTreeSet;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectMeta;
use vfs_core::{Error, Result, codes};

use crate::Shared;
use crate::client::{Client, FailureKind, StoreError};
use crate::db::{Db, store_error};
use crate::format::{self, FLAG_COLLECTED, FLAG_VOID, HEADER_LEN, KIND_SNAPSHOT, NewCommit};
use crate::keys::DbKeys;
use crate::page_groups;
use crate::params::Compaction;
use crate::version::{Page, Version};

/// A chunk number and its bytes.
pub(crate) type ChunkBytes = (u32, Arc<[u8]>);

/// Pages fetched at once while building a snapshot.
const PAGE_FETCH_CONCURRENCY: usize = 16;

/// What [`ObjectVfs::compact`](crate::ObjectVfs::compact) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// The LSN of the snapshot that now covers the head (0: the database
    /// has no commit, so there is nothing to snapshot).
    pub snapshot_lsn: u64,
    /// Objects written: 1 (or, for a database of more than
    /// [`ObjectOptions::snapshot_group_pages`] pages, one per group plus
    /// the manifest), or 0 when a snapshot at that LSN existed.
    ///
    /// [`ObjectOptions::snapshot_group_pages`]: crate::ObjectOptions::snapshot_group_pages
    pub objects_written: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Pages read from the store to build it (the others were cached).
    pub pages_fetched: u64,
    /// Page groups the snapshot shares with the previous one (no page of
    /// their range changed since), neither read nor written again.
    pub groups_reused: u64,
}

impl fmt::Display for CompactReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.snapshot_lsn, self.objects_written) {
            (0, _) => f.write_str("no commit to compact"),
            (lsn, 0) => write!(f, "snapshot at LSN {lsn} exists already; nothing written"),
            (lsn, n) => {
                write!(
                    f,
                    "snapshot at LSN {lsn}: {n} object(s), {} bytes written ({} pages fetched)",
                    self.bytes_written, self.pages_fetched
                )?;
                if self.groups_reused > 0 {
                    write!(f, ", {} page groups reused", self.groups_reused)?;
                }
                Ok(())
            }
        }
    }
}

/// What [`ObjectVfs::gc`](crate::ObjectVfs::gc) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    /// The snapshot the oldest retained state is read from (0: no snapshot
    /// old enough, so nothing could be deleted).
    pub base_lsn: u64,
    /// Log objects deleted (or, for `log/1`, replaced by a tombstone).
    pub log_objects_deleted: u64,
    /// Older snapshots deleted.
    pub snapshots_deleted: u64,
    /// Page-group objects deleted: those of deleted snapshots, and
    /// orphans of compactions that never published their manifest (once
    /// older than the retention window).
    pub groups_deleted: u64,
    /// Bytes those objects held.
    pub bytes_deleted: u64,
    /// Objects written (the tombstone at `log/1`, once).
    pub objects_written: u64,
    /// Bytes written.
    pub bytes_written: u64,
}

impl GcReport {
    /// Objects deleted or replaced by a tombstone.
    pub fn objects_deleted(&self) -> u64 {
        self.log_objects_deleted + self.snapshots_deleted + self.groups_deleted
    }
}

impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.base_lsn == 0 {
            return f.write_str("no snapshot older than the retained states; nothing deleted");
        }
        write!(
            f,
            "retained from snapshot {}: {} log objects, {} snapshots and {} page groups deleted ({} bytes), {} objects written ({} bytes)",
            self.base_lsn,
            self.log_objects_deleted,
            self.snapshots_deleted,
            self.groups_deleted,
            self.bytes_deleted,
            self.objects_written,
            self.bytes_written
        )
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Writes `snap/<head>` for `db`'s newest state (looking in the store now):
/// one object, or groups of `group_pages` pages and a manifest when the
/// database has more pages than that.
pub(crate) fn compact(shared: &Shared, db: &Db, group_pages: u32) -> Result<CompactReport> {
    let group_pages = group_pages.max(1);
    let ctx = &shared.ctx;
    let version = db.read_state(ctx, Duration::ZERO, codes::SQLITE_IOERR_READ)?;
    // With transactions queued (group commit) the head is not in the
    // store yet: compact what is.
    let version = match db.group.get() {
        Some(g) if version.unpublished => g.published(),
        _ => version,
    };
    if version.lsn == 0 {
        return Ok(CompactReport::default());
    }
    let mut report = CompactReport {
        snapshot_lsn: version.lsn,
        ..CompactReport::default()
    };
    if db.newest_snapshot() >= version.lsn {
        return Ok(report);
    }
    let count = version.size.div_ceil(u64::from(version.chunk_size));
    if count > u64::from(group_pages) {
        page_groups::write_grouped(shared, db, &version, group_pages, &mut report)?;
        db.note_snapshot(version.lsn);
        return Ok(report);
    }
    let (pages, fetched) = gather_pages(shared, db, &version, 0..count)?;
    report.pages_fetched = fetched;
    let body = encode_state(&version, &pages, KIND_SNAPSHOT);
    let len = body.len() as u64;
    let key = db.keys.snapshot(version.lsn);
    let client = ctx.client.clone();
    let k = key.clone();
    let put = ctx
        .runtime
        .run(async move { client.put_create(&k, Bytes::from(body)).await })?;
    match put {
        Ok(()) => {
            report.objects_written = 1;
            report.bytes_written = len;
        }
        // Another compactor wrote the same state first.
        Err(e) if e.kind == FailureKind::Exists => {}
        Err(e) => return Err(store_error(codes::SQLITE_IOERR_WRITE, &db.name, &e)),
    }
    db.note_snapshot(version.lsn);
    Ok(report)
}

/// The compaction policy ([`ObjectOptions::compact_every`]): after commit
/// `lsn`, compact and collect in a background thread when enough commits
/// have piled up above the newest known snapshot (one run at a time per
/// database; failures are left for the next commit to retry).
///
/// [`ObjectOptions::compact_every`]: crate::ObjectOptions::compact_every
pub(crate) fn maybe_compact(shared: &Arc<Shared>, db: &Arc<Db>, lsn: u64, policy: Compaction) {
    let Some(every) = policy.every else {
        return;
    };
    if lsn.saturating_sub(db.newest_snapshot()) < every.max(1) || !db.claim_compaction() {
        return;
    }
    let (bg_shared, bg_db) = (Arc::clone(shared), Arc::clone(db));
    let spawned = std::thread::Builder::new()
        .name("vfs-object-compact".into())
        .spawn(move || {
            if compact(&bg_shared, &bg_db, policy.group_pages).is_ok() {
                let _ = gc(&bg_shared, &bg_db, policy.retention);
            }
            bg_db.release_compaction();
        });
    match spawned {
        Ok(handle) => *db.background.lock() = Some(handle),
        // No thread now: the next commit tries again.
        Err(_) => db.release_compaction(),
    }
}

/// Encodes the state `version` holds as one object of `kind` (a snapshot,
/// or a group of one): the header carries commit `version.lsn`'s id, which
/// readers and writers starting from it check `log/<lsn>` against, and its
/// commit time, not the compaction's (time travel reads it for the versions
/// the object holds, and times must not decrease along the LSNs: `asof=`).
pub(crate) fn encode_state(version: &Version, pages: &[ChunkBytes], kind: u16) -> Vec<u8> {
    let refs: Vec<(u32, &[u8])> = pages.iter().map(|(c, b)| (*c, &b[..])).collect();
    format::encode_as(
        &NewCommit {
            lsn: version.lsn,
            txid: version.txid,
            db_size: version.size,
            chunk_size: version.chunk_size,
            time_ms: version.time_ms,
            flags: 0,
            pages: &refs,
        },
        kind,
    )
}

/// Every stored chunk of `version` in `chunks` (holes left out), fetching
/// the ones not cached [`PAGE_FETCH_CONCURRENCY`] at a time; and how many
/// it fetched.
pub(crate) fn gather_pages(
    shared: &Shared,
    db: &Db,
    version: &Version,
    chunks: Range<u64>,
) -> Result<(Vec<ChunkBytes>, u64)> {
    let ctx = &shared.ctx;
    let mut pages: Vec<(u32, Option<Arc<[u8]>>)> = Vec::new();
    let mut missing: Vec<(usize, u64, Arc<Page>)> = Vec::new();
    for chunk in chunks {
        let Some(page) = version.page(chunk) else {
            continue;
        };
        let cached = page.cached();
        if cached.is_none() {
            missing.push((pages.len(), chunk, Arc::clone(page)));
        }
        pages.push((chunk as u32, cached));
    }
    let fetched = missing.len() as u64;
    if !missing.is_empty() {
        let client = ctx.client.clone();
        let keys = db.keys.clone();
        let got = ctx.runtime.run(async move {
            futures::stream::iter(missing.into_iter().map(|(at, chunk, page)| {
                let client = client.clone();
                let key = keys.object_of(&page.commit);
                async move {
                    let bytes = client.get_range(&key, page.range()).await;
                    (at, chunk, page, key, bytes)
                }
            }))
            .buffer_unordered(PAGE_FETCH_CONCURRENCY)
            .collect::<Vec<_>>()
            .await
        })?;
        for (at, chunk, page, key, bytes) in got {
            let bytes = bytes.map_err(|e| store_error(codes::SQLITE_IOERR_READ, &db.name, &e))?;
            if !format::check_page(page.crc, &bytes)
                || bytes.len() != page.commit.chunk_size as usize
            {
                return Err(Error::new(
                    codes::SQLITE_IOERR_DATA,
                    format!(
                        "vfs-object: {:?}: page {chunk} read from {key} fails its CRC-32; no snapshot written",
                        db.name
                    ),
                ));
            }
            let data: Arc<[u8]> = bytes.as_ref().into();
            ctx.cache.fill(&page, Arc::clone(&data));
            pages[at].1 = Some(data);
        }
    }
    let pages = pages
        .into_iter()
        .map(|(c, b)| (c, b.expect("every missing page was fetched")))
        .collect();
    Ok((pages, fetched))
}

/// A listed object of the database: LSN, size, age in the store's clock.
struct Listed {
    lsn: u64,
    size: u64,
    modified_ms: i64,
}

fn listed(metas: &[ObjectMeta], lsn_of: impl Fn(&ObjectMeta) -> Option<u64>) -> Vec<Listed> {
    let mut v: Vec<Listed> = metas
        .iter()
        .filter_map(|m| {
            lsn_of(m).map(|lsn| Listed {
                lsn,
                size: m.size,
                modified_ms: m.last_modified.timestamp_millis(),
            })
        })
        .collect();
    v.sort_unstable_by_key(|l| l.lsn);
    v
}

/// What garbage collection of one database may delete, from its listings.
#[derive(Debug, PartialEq, Eq)]
struct GcPlan {
    /// The newest snapshot at or below the oldest retained state.
    base: u64,
    /// Log objects below `base − 1`, ascending (the base's parent stays:
    /// a writer whose commit became the base right after its PUT checks
    /// that parent next, see `snapshot.rs`).
    logs: Vec<(u64, u64)>,
    /// Snapshots below `base` older than the window.
    snaps: Vec<(u64, u64)>,
}

/// The retained states are every LSN from the one current when the window
/// began (`W − 1`, `W` the oldest commit inside the window; the head when
/// no commit is) onwards. They need the newest snapshot `B ≤ W − 1` and
/// the log above it: everything below `B` goes, except snapshots still
/// inside the window.
fn plan(logs: &[Listed], snaps: &[Listed], cutoff_ms: i64) -> Option<GcPlan> {
    let head = logs.last().map_or(0, |l| l.lsn);
    let oldest_in_window = logs
        .iter()
        .find(|l| l.modified_ms > cutoff_ms)
        .map_or(head + 1, |l| l.lsn);
    let base = snaps.iter().rev().find(|s| s.lsn < oldest_in_window)?.lsn;
    Some(GcPlan {
        base,
        logs: logs
            .iter()
            .filter(|l| l.lsn + 1 < base)
            .map(|l| (l.lsn, l.size))
            .collect(),
        snaps: snaps
            .iter()
            .filter(|s| s.lsn < base && s.modified_ms <= cutoff_ms)
            .map(|s| (s.lsn, s.size))
            .collect(),
    })
}

/// Deletes what no state newer than `retention` ago needs (see [`plan`]).
/// Log objects go in ascending LSN order and the run stops at the first
/// failure: the invariant readers and writers rely on (`snapshot.rs`).
pub(crate) fn gc(shared: &Shared, db: &Db, retention: Duration) -> Result<GcReport> {
    let ctx = &shared.ctx;
    let client = ctx.client.clone();
    let keys = db.keys.clone();
    let cutoff_ms =
        i64::try_from(now_ms().saturating_sub(retention.as_millis() as u64)).unwrap_or(i64::MAX);
    let r = ctx.runtime.run(async move {
        let mut report = GcReport::default();
        let r = gc_async(&client, &keys, cutoff_ms, &mut report).await;
        (report, r)
    })?;
    let (report, result) = r;
    result.map_err(|e| {
        Error::new(
            codes::SQLITE_IOERR_DELETE,
            format!(
                "vfs-object: {:?}: {e}; garbage collection stopped (safely) after: {report}",
                db.name
            ),
        )
    })?;
    Ok(report)
}

async fn gc_async(
    client: &Client,
    keys: &DbKeys,
    cutoff_ms: i64,
    report: &mut GcReport,
) -> std::result::Result<(), StoreError> {
    let log_metas = client.list_after(keys.log_dir(), &keys.commit(0)).await?;
    let snap_metas = client
        .list_after(keys.snap_dir(), &keys.snapshot(0))
        .await?;
    let logs = listed(&log_metas, |m| keys.lsn_of(&m.location));
    let snaps = listed(&snap_metas, |m| keys.snapshot_lsn_of(&m.location));
    let plan = plan(&logs, &snaps, cutoff_ms);
    // The page groups no snapshot left after this run names (orphans of
    // crashed compactions too), decided before anything is deleted.
    let going: BTreeSet<u64> = plan
        .iter()
        .flat_map(|p| p.snaps.iter().map(|s| s.0))
        .collect();
    let kept: Vec<(u64, u64)> = snaps
        .iter()
        .filter(|s| !going.contains(&s.lsn))
        .map(|s| (s.lsn, s.size))
        .collect();
    let base = plan.as_ref().map(|p| p.base);
    let unnamed = page_groups::unnamed_groups(client, keys, &kept, base, cutoff_ms).await?;
    let Some(plan) = plan else {
        return collect_groups(client, unnamed, report).await;
    };
    report.base_lsn = plan.base;
    for (lsn, size) in plan.logs {
        if lsn == 1 {
            // `log/1` has no parent a writer could check, so it is never
            // freed: a tombstone takes its place.
            if size == HEADER_LEN as u64 && is_tombstone(client, keys).await? {
                continue;
            }
            let tomb = tombstone();
            let len = tomb.len() as u64;
            client.put_overwrite(&keys.commit(1), tomb.into()).await?;
            report.objects_written += 1;
            report.bytes_written += len;
        } else {
            client.delete(&keys.commit(lsn)).await?;
        }
        report.log_objects_deleted += 1;
        report.bytes_deleted += size;
    }
    for (lsn, size) in plan.snaps {
        client.delete(&keys.snapshot(lsn)).await?;
        report.snapshots_deleted += 1;
        report.bytes_deleted += size;
    }
    // Groups last: a manifest is deleted before the groups it names.
    collect_groups(client, unnamed, report).await
}

async fn collect_groups(
    client: &Client,
    unnamed: Vec<(object_store::path::Path, u64)>,
    report: &mut GcReport,
) -> std::result::Result<(), StoreError> {
    for (key, size) in unnamed {
        client.delete(&key).await?;
        report.groups_deleted += 1;
        report.bytes_deleted += size;
    }
    Ok(())
}

/// The object garbage collection leaves at `log/1`: a void commit flagged
/// collected, with a random transaction id.
fn tombstone() -> Vec<u8> {
    format::encode(&NewCommit {
        lsn: 1,
        txid: rand::random(),
        db_size: 0,
        chunk_size: format::MIN_CHUNK,
        time_ms: now_ms(),
        flags: FLAG_VOID | FLAG_COLLECTED,
        pages: &[],
    })
}

async fn is_tombstone(client: &Client, keys: &DbKeys) -> std::result::Result<bool, StoreError> {
    let head = client
        .get_range(&keys.commit(1), 0..HEADER_LEN as u64)
        .await?;
    Ok(format::decode_header(&head).is_ok_and(|h| h.flags & FLAG_COLLECTED != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(lsn: u64, modified_ms: i64) -> Listed {
        Listed {
            lsn,
            size: 10,
            modified_ms,
        }
    }

    #[test]
    fn plans_keep_every_state_inside_the_window() {
        let logs: Vec<Listed> = (1..=10).map(|i| l(i, i as i64 * 100)).collect();
        // No snapshot: nothing goes.
        assert_eq!(plan(&logs, &[], 10_000), None);
        // Everything old: the newest snapshot is the base.
        let snaps = vec![l(4, 450), l(8, 850)];
        let p = plan(&logs, &snaps, 10_000).unwrap();
        assert_eq!(p.base, 8);
        assert_eq!(p.logs.len(), 6);
        assert_eq!(p.snaps, vec![(4, 10)]);
        // The window starts inside commit 6: states 5.. are retained, so
        // the base is snapshot 4 and snapshot 8 stays.
        let p = plan(&logs, &snaps, 550).unwrap();
        assert_eq!(p.base, 4);
        assert_eq!(p.logs.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2]);
        assert!(p.snaps.is_empty());
        // A window before every commit: no snapshot below it.
        assert_eq!(plan(&logs, &snaps, 50).map(|p| p.base), None);
    }
}
