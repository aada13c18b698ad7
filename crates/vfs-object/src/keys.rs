//! Where a database's objects live: `<prefix>/<database>/log/<LSN>`,
//! `<prefix>/<database>/snap/<LSN>` and the page groups of large snapshots,
//! `<prefix>/<database>/group/<LSN>/<group>`.

use object_store::path::Path;
use vfs_core::{Error, Result};

/// Path segments the format keeps for itself (`log/` now; snapshots,
/// leases and metadata in issue #24), refused inside database names so no
/// database's keys fall inside another's.
pub const RESERVED_SEGMENTS: [&str; 5] = ["log", "snap", "lease", "meta", "group"];

/// Digits of an LSN in a key (zero-padded, so listing order is LSN order).
const LSN_DIGITS: usize = 20;
/// Digits of a group number in a key (zero-padded likewise).
const GROUP_DIGITS: usize = 10;

/// The keys of one database.
#[derive(Clone, Debug)]
pub struct DbKeys {
    log: Path,
    snap: Path,
    lease: Path,
    group: Path,
}

/// Parses the registration's prefix (`""` for the bucket's root).
pub fn parse_prefix(prefix: &str) -> Result<Path> {
    let p = Path::parse(prefix).map_err(|e| {
        Error::new(
            vfs_core::codes::SQLITE_MISUSE,
            format!("vfs-object: prefix {prefix:?} is not a valid object path: {e}"),
        )
    })?;
    Ok(p)
}

impl DbKeys {
    /// The keys of the database SQLite names `name` (`/orders.db`), under
    /// `prefix`.
    pub fn new(prefix: &Path, name: &str) -> Result<DbKeys> {
        let trimmed = name.trim_start_matches('/');
        let refuse = |why: String| {
            Error::cant_open(format!(
                "vfs-object: database name {name:?} cannot be an object path: {why}"
            ))
        };
        if trimmed.is_empty() {
            return Err(refuse("it is empty".into()));
        }
        let db = Path::parse(trimmed).map_err(|e| refuse(e.to_string()))?;
        if let Some(seg) = db.parts().find(|p| RESERVED_SEGMENTS.contains(&p.as_ref())) {
            return Err(refuse(format!(
                "the segment {:?} is reserved for the format ({})",
                seg.as_ref(),
                RESERVED_SEGMENTS.join(", ")
            )));
        }
        let under = |segment: &'static str| {
            Path::from_iter(
                prefix
                    .parts()
                    .chain(db.parts())
                    .chain(std::iter::once(segment.into())),
            )
        };
        Ok(DbKeys {
            log: under("log"),
            snap: under("snap"),
            lease: under("lease"),
            group: under("group"),
        })
    }

    /// The directory of the snapshots (`…/snap`).
    pub fn snap_dir(&self) -> &Path {
        &self.snap
    }

    /// The key of the snapshot at `lsn`.
    pub fn snapshot(&self, lsn: u64) -> Path {
        self.snap.clone().join(format!("{lsn:0LSN_DIGITS$}"))
    }

    /// The object holding the pages of `lsn`: its snapshot when
    /// `snapshot`, else its commit.
    pub fn pages_of(&self, lsn: u64, snapshot: bool) -> Path {
        if snapshot {
            self.snapshot(lsn)
        } else {
            self.commit(lsn)
        }
    }

    /// The object holding the pages of `commit`: its group object, its
    /// snapshot or its log object.
    pub fn object_of(&self, commit: &crate::version::CommitInfo) -> Path {
        match commit.group {
            Some(g) => self.group(commit.lsn, g),
            None => self.pages_of(commit.lsn, commit.snapshot),
        }
    }

    /// The directory of the page groups of snapshots (`…/group`).
    pub fn group_dir(&self) -> &Path {
        &self.group
    }

    /// The directory of the groups written for the snapshot at `lsn`.
    pub fn groups_of(&self, lsn: u64) -> Path {
        self.group.clone().join(format!("{lsn:0LSN_DIGITS$}"))
    }

    /// The key of group `group` written for the snapshot at `lsn`.
    pub fn group(&self, lsn: u64, group: u32) -> Path {
        self.groups_of(lsn).join(format!("{group:0GROUP_DIGITS$}"))
    }

    /// The snapshot LSN and group number of a listed key, if it is a group
    /// object of this database.
    pub fn group_of(&self, key: &Path) -> Option<(u64, u32)> {
        let mut rest = key.prefix_match(&self.group)?;
        let (lsn, group) = (rest.next()?, rest.next()?);
        if rest.next().is_some() {
            return None;
        }
        let (l, g) = (lsn.as_ref(), group.as_ref());
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(l, LSN_DIGITS) || !digits(g, GROUP_DIGITS) {
            return None;
        }
        Some((l.parse().ok().filter(|&l| l > 0)?, g.parse().ok()?))
    }

    /// The LSN of a listed key, if it is a snapshot of this database.
    pub fn snapshot_lsn_of(&self, key: &Path) -> Option<u64> {
        lsn_under(&self.snap, key)
    }

    /// The directory of the commit log (`…/log`).
    pub fn log_dir(&self) -> &Path {
        &self.log
    }

    /// The key of the writer lease (`…/lease`).
    pub fn lease(&self) -> &Path {
        &self.lease
    }

    /// The key of commit `lsn`.
    pub fn commit(&self, lsn: u64) -> Path {
        self.log.clone().join(format!("{lsn:0LSN_DIGITS$}"))
    }

    /// The LSN of a listed key, if it is a commit of this database.
    pub fn lsn_of(&self, key: &Path) -> Option<u64> {
        lsn_under(&self.log, key)
    }
}

/// The LSN named by `key` directly under `dir` (20 digits, above 0).
fn lsn_under(dir: &Path, key: &Path) -> Option<u64> {
    let mut rest = key.prefix_match(dir)?;
    let last = rest.next()?;
    if rest.next().is_some() {
        return None;
    }
    let s = last.as_ref();
    if s.len() != LSN_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|&l| l > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_lsns() {
        let k = DbKeys::new(&parse_prefix("dbs/prod").unwrap(), "/orders.db").unwrap();
        assert_eq!(
            k.commit(42).as_ref(),
            "dbs/prod/orders.db/log/00000000000000000042"
        );
        assert_eq!(k.lsn_of(&k.commit(42)), Some(42));
        assert_eq!(k.lease().as_ref(), "dbs/prod/orders.db/lease");
        assert_eq!(k.lsn_of(k.lease()), None);
        assert_eq!(k.lsn_of(&k.commit(u64::MAX)), Some(u64::MAX));
        assert_eq!(k.lsn_of(&Path::from("dbs/prod/orders.db/log/42")), None);
        assert_eq!(
            k.snapshot(7).as_ref(),
            "dbs/prod/orders.db/snap/00000000000000000007"
        );
        assert_eq!(k.snapshot_lsn_of(&k.snapshot(7)), Some(7));
        assert_eq!(k.snapshot_lsn_of(&k.commit(7)), None);
        assert_eq!(k.lsn_of(&k.snapshot(7)), None);
        assert_eq!(
            k.group(7, 3).as_ref(),
            "dbs/prod/orders.db/group/00000000000000000007/0000000003"
        );
        assert_eq!(k.group_of(&k.group(7, 3)), Some((7, 3)));
        assert_eq!(k.group_of(&k.snapshot(7)), None);
        assert_eq!(k.group_of(&k.groups_of(7)), None);
        assert_eq!(k.snapshot_lsn_of(&k.group(7, 3)), None);
        assert_eq!(
            k.lsn_of(&Path::from("dbs/prod/orders.db/log/x/00000000000000000001")),
            None
        );
        let root = DbKeys::new(&parse_prefix("").unwrap(), "a/b.db").unwrap();
        assert_eq!(root.commit(1).as_ref(), "a/b.db/log/00000000000000000001");
    }

    #[test]
    fn names_that_could_collide_are_refused() {
        let p = parse_prefix("x").unwrap();
        for bad in ["", "/", "a//b", "a/../b", "a/log", "snap/x.db", "lease"] {
            assert!(DbKeys::new(&p, bad).is_err(), "{bad:?} accepted");
        }
        assert!(DbKeys::new(&p, "/a/logs.db").is_ok());
    }
}
