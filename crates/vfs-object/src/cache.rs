//! The local page cache: memory with a byte budget, optionally backed by a
//! directory that survives the process.
//!
//! Keys name immutable bytes, so nothing is ever invalidated: in memory a
//! page is (database instance, LSN, chunk); on disk it is (database key,
//! LSN, transaction id, chunk), so a database deleted and created again
//! under the same name can never be served from another life's files.
//! Every page read from the directory is checked against its CRC-32 from
//! the commit index before use; a bad file is deleted and refetched.

use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

/// One page in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageKey {
    /// [`Db::uid`](crate::db::Db): unique per database per process.
    pub db: u64,
    pub lsn: u64,
    pub chunk: u64,
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<PageKey, Arc<[u8]>> for ByBytes {
    fn weight(&self, _key: &PageKey, val: &Arc<[u8]>) -> u64 {
        // The bytes plus a rough per-entry overhead, so a budget of tiny
        // pages cannot hold unbounded entries.
        val.len() as u64 + 64
    }
}

/// Where a page lives in the directory.
pub struct DiskKey<'a> {
    /// A stable name for the database (its log directory's key).
    pub db: &'a str,
    pub lsn: u64,
    pub txid: [u8; 16],
    pub chunk: u64,
}

pub struct PageCache {
    mem: Option<Cache<PageKey, Arc<[u8]>, ByBytes>>,
    dir: Option<PathBuf>,
}

impl PageCache {
    /// A cache of at most `budget` bytes in memory (0: none) and, if given,
    /// the directory `dir`.
    pub fn new(budget: u64, dir: Option<PathBuf>) -> std::io::Result<PageCache> {
        let mem = (budget > 0).then(|| {
            let items = (budget / 4096).clamp(16, 1 << 20) as usize;
            Cache::with_weighter(items, budget, ByBytes)
        });
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)?;
        }
        Ok(PageCache { mem, dir })
    }

    pub fn get(&self, key: &PageKey) -> Option<Arc<[u8]>> {
        self.mem.as_ref()?.get(key)
    }

    pub fn insert(&self, key: PageKey, bytes: Arc<[u8]>) {
        if let Some(m) = &self.mem {
            m.insert(key, bytes);
        }
    }

    /// Bytes held in memory.
    pub fn mem_bytes(&self) -> u64 {
        self.mem.as_ref().map_or(0, |m| m.weight())
    }

    pub fn has_dir(&self) -> bool {
        self.dir.is_some()
    }

    fn disk_path(&self, k: &DiskKey<'_>) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let txid: String = k.txid.iter().map(|b| format!("{b:02x}")).collect();
        Some(
            dir.join(format!("{:016x}", fnv1a(k.db.as_bytes())))
                .join(format!("{:020}-{txid}-{}", k.lsn, k.chunk)),
        )
    }

    /// The page from the directory, if there and intact.
    pub fn disk_get(&self, k: &DiskKey<'_>, crc: u32) -> Option<Arc<[u8]>> {
        let path = self.disk_path(k)?;
        let bytes = std::fs::read(&path).ok()?;
        if crc32fast::hash(&bytes) != crc {
            let _ = std::fs::remove_file(&path);
            return None;
        }
        Some(bytes.into())
    }

    /// Stores the page in the directory (best effort: the cache is an
    /// optimisation, a failure to write it is not an error).
    pub fn disk_put(&self, k: &DiskKey<'_>, bytes: &[u8]) {
        let Some(path) = self.disk_path(k) else {
            return;
        };
        let _ = write_atomically(&path, bytes);
    }
}

fn write_atomically(path: &FsPath, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("cache paths have a parent");
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile_in(dir)?;
    std::io::Write::write_all(&mut tmp.1, bytes)?;
    std::fs::rename(&tmp.0, path)
}

fn tempfile_in(dir: &FsPath) -> std::io::Result<(PathBuf, std::fs::File)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        ".tmp-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let path = dir.join(name);
    let f = std::fs::File::create(&path)?;
    Ok((path, f))
}

/// FNV-1a, 64 bits: a stable short name for a database's directory.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_budget_and_disk_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let c = PageCache::new(10 * 4160, Some(dir.path().join("c"))).unwrap();
        for i in 0..100 {
            c.insert(
                PageKey {
                    db: 1,
                    lsn: 1,
                    chunk: i,
                },
                vec![i as u8; 4096].into(),
            );
        }
        assert!(c.mem_bytes() <= 10 * 4160, "{}", c.mem_bytes());
        let k = DiskKey {
            db: "p/x.db/log",
            lsn: 3,
            txid: [7; 16],
            chunk: 5,
        };
        let page = vec![5u8; 4096];
        c.disk_put(&k, &page);
        let crc = crc32fast::hash(&page);
        assert_eq!(&*c.disk_get(&k, crc).unwrap(), &page[..]);
        // A damaged file is refused and removed.
        let path = c.disk_path(&k).unwrap();
        std::fs::write(&path, vec![6u8; 4096]).unwrap();
        assert!(c.disk_get(&k, crc).is_none());
        assert!(!path.exists());
    }
}
