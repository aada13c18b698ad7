//! What a database costs in the store: its objects and bytes by kind.

use object_store::path::Path;
use vfs_core::{Result, codes};

use crate::db::store_error;
use crate::keys::DbKeys;
use crate::{ObjectVfs, normalise};

/// Objects and bytes of one kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ObjectCount {
    /// Number of objects.
    pub objects: u64,
    /// Their total size in bytes.
    pub bytes: u64,
}

impl ObjectCount {
    fn add(&mut self, bytes: u64) {
        self.objects += 1;
        self.bytes += bytes;
    }
}

/// The objects of one database by kind, as [`ObjectVfs::storage_usage`]
/// counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StorageUsage {
    /// Commit objects (`log/`).
    pub log: ObjectCount,
    /// Snapshot objects (`snap/`, written by compaction), with the page
    /// groups of large snapshots (`group/`).
    pub snapshots: ObjectCount,
    /// Writer lease objects (`lease`, `lease/…`).
    pub leases: ObjectCount,
    /// Other objects under the format's reserved names (`meta`, `meta/…`).
    pub other: ObjectCount,
}

impl StorageUsage {
    /// Every kind together.
    pub fn total(&self) -> ObjectCount {
        let all = [self.log, self.snapshots, self.leases, self.other];
        ObjectCount {
            objects: all.iter().map(|c| c.objects).sum(),
            bytes: all.iter().map(|c| c.bytes).sum(),
        }
    }
}

impl ObjectVfs {
    /// The objects and bytes database `name` holds in the store, by kind.
    /// Costs ⌈o/1000⌉ LIST for `o` objects under the database's name
    /// (those of databases whose names continue it, such as `a/b.db`
    /// under `a`, are listed but not counted).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use object_store::memory::InMemory;
    /// use vfs_object::{ObjectOptions, ObjectVfs};
    ///
    /// let vfs = ObjectVfs::new(Arc::new(InMemory::new()), "", ObjectOptions::default()).unwrap();
    /// let reg = vfs_core::register("object-usage-doc", vfs.clone(), false).unwrap();
    /// let c = rusqlite::Connection::open("file:/u.db?vfs=object-usage-doc").unwrap();
    /// c.execute_batch("CREATE TABLE t(x)").unwrap();
    /// let usage = vfs.storage_usage("/u.db").unwrap();
    /// assert_eq!(usage.log.objects, 1);
    /// assert_eq!(usage.total(), usage.log);
    /// drop(c);
    /// reg.unregister().unwrap();
    /// ```
    pub fn storage_usage(&self, name: &str) -> Result<StorageUsage> {
        let name = normalise(name);
        let keys = DbKeys::new(&self.shared.prefix, &name)?;
        let log_parts: Vec<_> = keys.log_dir().parts().collect();
        let db_dir = Path::from_iter(log_parts[..log_parts.len() - 1].iter().cloned());
        let client = self.shared.ctx.client.clone();
        let dir = db_dir.clone();
        // Every key under the directory sorts after the directory's own.
        let listed = self
            .shared
            .ctx
            .runtime
            .run(async move { client.list_after(&dir, &dir).await })?
            .map_err(|e| store_error(codes::SQLITE_IOERR_READ, &name, &e))?;
        let mut usage = StorageUsage::default();
        for m in listed {
            let Some(mut rest) = m.location.prefix_match(&db_dir) else {
                continue;
            };
            let Some(first) = rest.next() else { continue };
            let kind = first.as_ref();
            let slot = if kind == "log" && keys.lsn_of(&m.location).is_some() {
                &mut usage.log
            } else if kind == "snap" || (kind == "group" && keys.group_of(&m.location).is_some()) {
                &mut usage.snapshots
            } else if kind == "lease" {
                &mut usage.leases
            } else if kind == "meta" {
                &mut usage.other
            } else {
                // Another database's, or nothing of the format.
                continue;
            };
            slot.add(m.size);
        }
        Ok(usage)
    }
}
