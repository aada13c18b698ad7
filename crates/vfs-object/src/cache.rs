//! The local page cache: memory with a byte budget, optionally backed by a
//! directory that survives the process.
//!
//! In memory, a page's bytes hang off its [`Page`] (one stored page of one
//! commit, immutable), so a warm read is two array indexings and a shared
//! lock, and nothing is ever invalidated. Bytes are evicted, oldest first
//! with a second chance for pages read since the last pass, when the total
//! passes the budget; a page no version needs any more frees its bytes
//! with it.
//!
//! On disk a page is (database key, LSN, transaction id, chunk), so a
//! database deleted and created again under the same name can never be
//! served from another life's files. Every page read from the directory is
//! checked against its CRC-32 from the commit index before use; a bad file
//! is deleted and refetched.

use std::collections::VecDeque;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use crate::version::{CommitInfo, Page};

/// Bytes held by the pages of one cache.
#[derive(Debug, Default)]
pub struct Budget {
    used: AtomicU64,
}

impl Budget {
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub(crate) fn add(&self, n: usize) {
        self.used.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(crate) fn sub(&self, n: usize) {
        self.used.fetch_sub(n as u64, Ordering::Relaxed);
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
    limit: u64,
    budget: Arc<Budget>,
    /// Pages holding bytes, oldest first.
    queue: Mutex<VecDeque<Weak<Page>>>,
    dir: Option<PathBuf>,
}

impl PageCache {
    /// A cache of at most `limit` bytes in memory (0: none) and, if given,
    /// the directory `dir`.
    pub fn new(limit: u64, dir: Option<PathBuf>) -> std::io::Result<PageCache> {
        if let Some(d) = &dir {
            std::fs::create_dir_all(d)?;
        }
        Ok(PageCache {
            limit,
            budget: Arc::default(),
            queue: Mutex::new(VecDeque::new()),
            dir,
        })
    }

    /// A page of this cache: stored as entry `entry` of `commit`.
    pub fn page(&self, commit: &Arc<CommitInfo>, entry: u32, crc: u32) -> Arc<Page> {
        Arc::new(Page::new(
            Arc::clone(commit),
            entry,
            crc,
            Arc::clone(&self.budget),
        ))
    }

    /// A page whose bytes are held for as long as the page lives, never
    /// evicted: a queued transaction's page, which no object holds yet
    /// (`group.rs`).
    pub fn pinned_page(
        &self,
        commit: &Arc<CommitInfo>,
        entry: u32,
        crc: u32,
        bytes: Arc<[u8]>,
    ) -> Arc<Page> {
        let page = self.page(commit, entry, crc);
        page.set(bytes);
        page
    }

    /// Keeps `bytes` as `page`'s, evicting others past the budget.
    pub fn fill(&self, page: &Arc<Page>, bytes: Arc<[u8]>) {
        if self.limit == 0 || !page.set(bytes) {
            return;
        }
        let mut q = self.queue.lock();
        q.push_back(Arc::downgrade(page));
        // Each page gets at most one second chance per pass.
        let mut budget_steps = 2 * q.len();
        while self.budget.used() > self.limit && budget_steps > 0 {
            budget_steps -= 1;
            let Some(w) = q.pop_front() else { break };
            let Some(p) = w.upgrade() else { continue };
            if !p.evict_unless_referenced() {
                q.push_back(w);
            }
        }
        // Forget pages that are gone, now and then.
        if q.len() > 1024 && q.len() as u64 > 4 * (self.budget.used() / 512 + 1) {
            q.retain(|w| w.strong_count() > 0);
        }
    }

    /// The memory budget in bytes (0: no memory cache).
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes held in memory.
    pub fn mem_bytes(&self) -> u64 {
        self.budget.used()
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
        let c = PageCache::new(10 * 4096, Some(dir.path().join("c"))).unwrap();
        let info = Arc::new(CommitInfo {
            snapshot: false,
            group: None,
            lsn: 1,
            txid: [0; 16],
            data_offset: 96,
            chunk_size: 4096,
        });
        let pages: Vec<_> = (0..100).map(|i| c.page(&info, i, 0)).collect();
        for (i, p) in pages.iter().enumerate() {
            c.fill(p, vec![i as u8; 4096].into());
        }
        assert!(c.mem_bytes() <= 10 * 4096, "{}", c.mem_bytes());
        assert!(pages[99].cached().is_some(), "the newest page stays");
        drop(pages);
        assert_eq!(c.mem_bytes(), 0, "dropped pages free their bytes");
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
