//! A database's history: its retained versions, which one a time names,
//! and the state at any of them (`docs/object.md`, §11).
//!
//! "The state at a version" is one function, [`state_at`]: it starts from
//! the newest snapshot at or below the version (or the empty database)
//! and applies the retained log after it (which versions that allows:
//! `retained.rs`). A version whose objects are gone is an error naming
//! what is missing, never a different state.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use vfs_core::{Error, Result, codes};

use crate::client::{Client, StoreError};
use crate::db::{CatchUpError, Ctx, Db, apply_commit};
use crate::format::{FLAG_FULL_IMAGE, FLAG_VOID, FormatError};
use crate::keys::DbKeys;
use crate::retained::{Plan, Retained};
use crate::version::Version;

/// Which version of a database: a commit's LSN, or the newest commit made
/// at or before a time.
///
/// Times are the commits' own **commit time** (header bytes 64–71, written
/// by the committer), not the store's last-modified: see
/// `docs/object.md` §11 for why.
///
/// ```
/// use vfs_object::At;
/// assert_eq!(At::parse_lsn("42").unwrap(), At::Lsn(42));
/// let t = At::parse_time("2026-12-04T10:00:00.250Z").unwrap();
/// let At::Time(when) = t else { unreachable!() };
/// assert_eq!(
///     when.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis(),
///     1_796_378_400_250
/// );
/// assert!(At::parse_time("yesterday").is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// The state after commit `n` (`n ≥ 1`).
    Lsn(u64),
    /// The state after the newest commit whose commit time is at or
    /// before this time.
    Time(SystemTime),
}

impl At {
    /// An LSN as the `lsn=` URI parameter spells it: decimal, at least 1.
    /// Errors are `SQLITE_CANTOPEN` naming the value.
    pub fn parse_lsn(text: &str) -> Result<At> {
        match text.trim().parse::<u64>() {
            Ok(n) if n >= 1 => Ok(At::Lsn(n)),
            Ok(_) => Err(Error::cant_open(
                "vfs-object: lsn=0 names the empty database, which is no version (the first commit is LSN 1)",
            )),
            Err(_) => Err(Error::cant_open(format!(
                "vfs-object: lsn={text:?} is not an LSN (a decimal number from 1)"
            ))),
        }
    }

    /// A time as the `asof=` URI parameter spells it: RFC 3339
    /// (`2026-12-04T10:00:00Z`, `2026-12-04T11:00:00.5+01:00`). Errors are
    /// `SQLITE_CANTOPEN` naming the value.
    pub fn parse_time(text: &str) -> Result<At> {
        let t = chrono::DateTime::parse_from_rfc3339(text.trim()).map_err(|e| {
            Error::cant_open(format!(
                "vfs-object: asof={text:?} is not an RFC 3339 time such as 2026-12-04T10:00:00Z: {e}"
            ))
        })?;
        Ok(At::Time(SystemTime::from(t.with_timezone(&chrono::Utc))))
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            At::Lsn(n) => format!("lsn={n}"),
            At::Time(t) => format!("asof={}", rfc3339(*t)),
        }
    }
}

/// `t` in RFC 3339 with milliseconds, UTC.
pub(crate) fn rfc3339(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

pub(crate) fn from_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// One retained version of a database, as
/// [`ObjectVfs::versions`](crate::ObjectVfs::versions) lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VersionInfo {
    /// Its LSN.
    pub lsn: u64,
    /// When it was committed: the committer's clock, never earlier than
    /// its parent's commit time.
    pub commit_time: SystemTime,
    /// When the store says the object was written (its last-modified).
    pub stored_at: SystemTime,
    /// Database size in bytes after it.
    pub db_size: u64,
    /// Bytes of its commit object.
    pub object_bytes: u64,
    /// Pages the commit stored.
    pub pages_changed: u32,
    /// A void commit (a fence written by a writer that could not learn
    /// whether its own commit landed): the same state as its parent.
    pub void: bool,
    /// A full image (every page; written when the page size changes, and by
    /// a restore into a new database), or a version held by a snapshot.
    pub full_image: bool,
    /// Described by its snapshot (`snap/<lsn>`), not by its log object:
    /// garbage collection deleted `log/<lsn>` (or it never held this
    /// state's commit). It opens from the snapshot alone; `object_bytes`,
    /// `stored_at` and `pages_changed` are the snapshot's (for a snapshot
    /// written as page groups, `object_bytes` is its manifest's and
    /// `pages_changed` the pages of all its groups), and `commit_time` is
    /// the commit time the snapshot carries.
    pub snapshot: bool,
}

/// A commit object found by listing the log.
#[derive(Debug)]
pub(crate) struct Listed {
    pub lsn: u64,
    pub size: u64,
    pub stored_at: SystemTime,
}

/// Every commit object of `keys`' log, in LSN order: ⌈c/1000⌉ LIST
/// requests (the store pages its listing by 1,000 keys).
pub(crate) async fn list_log(client: &Client, keys: &DbKeys) -> Result<Vec<Listed>, StoreError> {
    let listed = client.list_after(keys.log_dir(), &keys.commit(0)).await?;
    Ok(listed_by_lsn(&listed, |p| keys.lsn_of(p)))
}

/// Every snapshot object (`snap/<LSN>`) of `keys`, in LSN order:
/// ⌈s/1000⌉ LIST requests.
pub(crate) async fn list_snapshots(
    client: &Client,
    keys: &DbKeys,
) -> Result<Vec<Listed>, StoreError> {
    let listed = client
        .list_after(keys.snap_dir(), &keys.snapshot(0))
        .await?;
    Ok(listed_by_lsn(&listed, |p| keys.snapshot_lsn_of(p)))
}

/// The listed objects whose key `lsn_of` recognises, sorted by LSN.
fn listed_by_lsn(
    metas: &[object_store::ObjectMeta],
    lsn_of: impl Fn(&object_store::path::Path) -> Option<u64>,
) -> Vec<Listed> {
    let mut out: Vec<Listed> = metas
        .iter()
        .filter_map(|m| {
            lsn_of(&m.location).map(|lsn| Listed {
                lsn,
                size: m.size,
                stored_at: m.last_modified.into(),
            })
        })
        .collect();
    out.sort_unstable_by_key(|l| l.lsn);
    out
}

/// Why a version cannot be read.
pub(crate) enum HistoryError {
    /// A request failed, or an object is damaged.
    Store(CatchUpError),
    /// The version does not exist, or is no longer retained.
    Version(String),
}

impl HistoryError {
    /// As an SQLite error: store failures with `store_code`, version
    /// problems with `version_code`.
    pub(crate) fn into_error(self, db: &str, store_code: i32, version_code: i32) -> Error {
        match self {
            HistoryError::Store(e) => e.into_error(store_code, db),
            HistoryError::Version(m) => {
                Error::new(version_code, format!("vfs-object: {db:?}: {m}"))
            }
        }
    }
}

impl From<CatchUpError> for HistoryError {
    fn from(e: CatchUpError) -> Self {
        HistoryError::Store(e)
    }
}

impl From<StoreError> for HistoryError {
    fn from(e: StoreError) -> Self {
        HistoryError::Store(CatchUpError::Store(e))
    }
}

/// The state a plan describes: its snapshot (or the empty database) with
/// its chain applied.
fn replay(ctx: &Ctx, keys: &DbKeys, plan: &Plan) -> Result<Version, HistoryError> {
    let mut v = Version::empty();
    if let Some((manifest, groups)) = &plan.groups {
        v = crate::page_groups::base_version(&ctx.cache, keys, manifest, groups)?;
    } else if let Some(snap) = &plan.snapshot {
        v = apply_commit(&ctx.cache, &v, snap, None).map_err(|m| {
            CatchUpError::Format(keys.snapshot(snap.header.lsn).to_string(), FormatError(m))
        })?;
    }
    for idx in &plan.chain {
        v = apply_commit(&ctx.cache, &v, idx, None).map_err(|m| {
            CatchUpError::Format(keys.commit(idx.header.lsn).to_string(), FormatError(m))
        })?;
    }
    if v.lsn != plan.lsn {
        // A snapshot at the version with an empty chain has its LSN; any
        // other outcome would be a planning error, never served.
        return Err(HistoryError::Version(format!(
            "LSN {} could not be rebuilt (reached LSN {})",
            plan.lsn, v.lsn
        )));
    }
    Ok(v)
}

/// The state of `db` at `at`, built from the newest snapshot at or below
/// it and the log after it (`retained.rs`): 2 LIST (more past 1,000
/// objects), the snapshot's index (1–2 GETs), one GET per log object
/// applied after it, and for a time ⌈log₂ v⌉ + 1 index GETs more to find
/// the version among the `v` that can be opened. The process's head costs
/// nothing when it is the LSN asked for.
pub(crate) fn state_at(ctx: &Ctx, db: &Db, at: At) -> Result<Arc<Version>, HistoryError> {
    if let At::Lsn(lsn) = at {
        let head = db.head();
        if db.loaded() && head.lsn == lsn && !head.unpublished {
            return Ok(head);
        }
    }
    let client = ctx.client.clone();
    let keys = db.keys.clone();
    let planned = ctx.runtime.run(async move {
        let mut retained = Retained::list(client, keys).await?;
        retained.plan(at).await
    });
    let plan =
        planned.map_err(|e| HistoryError::Store(CatchUpError::Runtime(e.message().into())))??;
    replay(ctx, &db.keys, &plan).map(Arc::new)
}

/// Every version of `db` that can be opened, oldest first.
pub(crate) fn versions(ctx: &Ctx, db: &Db) -> Result<Vec<VersionInfo>> {
    let client = ctx.client.clone();
    let keys = db.keys.clone();
    let listed = ctx
        .runtime
        .run(async move {
            let mut retained = Retained::list(client, keys).await?;
            Ok::<_, HistoryError>(retained.versions().await?)
        })?
        .map_err(|e| e.into_error(&db.name, codes::SQLITE_IOERR_READ, codes::SQLITE_ERROR))?;
    Ok(listed
        .into_iter()
        .map(|(l, i, snapshot)| VersionInfo {
            lsn: l.lsn,
            commit_time: from_ms(i.header.time_ms),
            stored_at: l.stored_at,
            db_size: i.header.db_size,
            object_bytes: l.size,
            pages_changed: i.header.entries,
            void: i.header.flags & FLAG_VOID != 0,
            full_image: snapshot || i.header.flags & FLAG_FULL_IMAGE != 0,
            snapshot,
        })
        .collect())
}

/// The version a connection opened with `lsn=` or `asof=` reads, or
/// `None` without either. Every problem is `SQLITE_CANTOPEN` naming the
/// parameter.
pub(crate) fn pinned_version(
    ctx: &Ctx,
    db: &Db,
    lsn: Option<&str>,
    asof: Option<&str>,
) -> Result<Option<(At, Arc<Version>)>> {
    let at = match (lsn, asof) {
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(Error::cant_open(
                "vfs-object: lsn= and asof= both given; name the version one way",
            ));
        }
        (Some(n), None) => At::parse_lsn(n)?,
        (None, Some(t)) => At::parse_time(t)?,
    };
    let v = state_at(ctx, db, at).map_err(|e| {
        let e = e.into_error(&db.name, codes::SQLITE_CANTOPEN, codes::SQLITE_CANTOPEN);
        Error::cant_open(format!("{} (opening {})", e.message(), at.describe()))
    })?;
    Ok(Some((at, v)))
}

impl crate::ObjectVfs {
    /// Every version of database `name` that can be opened (with `lsn=`,
    /// or restored), oldest first: LSN, commit time, size, object bytes,
    /// pages changed, void or not, held by a snapshot or not. After
    /// compaction and garbage collection these are the snapshot GC kept
    /// as its base and every version after it (`docs/object.md` §11).
    ///
    /// Costs ⌈c/1000⌉ + 1 LIST (the log and the snapshots) + one GET per
    /// version + one per snapshot (each GET the first 64 KiB of one object
    /// at most: its header and index, whose CRC is checked; 16 at once).
    /// The LISTs give object sizes and the store's last-modified times;
    /// the commit times, database sizes, page counts and void flags are in
    /// the headers.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::memory::InMemory;
    /// use vfs_object::{ObjectOptions, ObjectVfs};
    ///
    /// let vfs = ObjectVfs::new(Arc::new(InMemory::new()), "", ObjectOptions::default()).unwrap();
    /// let reg = vfs_core::register("object-versions-doc", vfs.clone(), false).unwrap();
    /// let c = rusqlite::Connection::open("file:/v.db?vfs=object-versions-doc").unwrap();
    /// c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
    /// let versions = vfs.versions("/v.db").unwrap();
    /// assert_eq!(versions.iter().map(|v| v.lsn).collect::<Vec<_>>(), [1, 2]);
    /// assert!(versions.iter().all(|v| !v.void && v.pages_changed > 0));
    /// drop(c);
    /// reg.unregister().unwrap();
    /// ```
    ///
    /// Errors: `SQLITE_IOERR_READ` for a failed request, `SQLITE_CORRUPT`
    /// for a damaged object (naming its key).
    pub fn versions(&self, name: &str) -> Result<Vec<VersionInfo>> {
        let db = self.db(name)?;
        versions(&self.shared.ctx, &db)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_parsed_strictly() {
        assert_eq!(At::parse_lsn(" 7 ").unwrap(), At::Lsn(7));
        for bad in ["0", "-1", "x", "", "1.5"] {
            let e = At::parse_lsn(bad).unwrap_err();
            assert_eq!(e.code(), Some(codes::SQLITE_CANTOPEN));
            assert!(e.message().contains("lsn="), "{e}");
        }
        let a = At::parse_time("2026-12-04T11:00:00+01:00").unwrap();
        let b = At::parse_time("2026-12-04T10:00:00Z").unwrap();
        assert_eq!(a, b);
        for bad in ["2026-12-04", "10:00", "2026-13-01T00:00:00Z", "now"] {
            let e = At::parse_time(bad).unwrap_err();
            assert!(e.message().contains("asof="), "{e}");
        }
        assert_eq!(
            rfc3339(from_ms(1_796_378_400_250)),
            "2026-12-04T10:00:00.250Z"
        );
    }
}
