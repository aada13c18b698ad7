//! One state of a database: its LSN, size, chunk size and page map.
//!
//! The page map is a two-level copy-on-write array: blocks of
//! [`BLOCK`] slots, each slot pointing at the [`Page`] that holds the
//! chunk's current bytes (or nothing: a hole). Applying a commit copies the
//! block pointers and the blocks it touches; a snapshot is one `Arc`; a
//! lookup is two indexings. A [`Page`] is one stored page of one commit,
//! shared by every version in which it is current, and carries its cached
//! bytes (see `cache.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;

use crate::cache::Budget;
use crate::format::{Entry, FLAG_COLLECTED, FLAG_FULL_IMAGE, Index, KIND_SNAPSHOT};

/// Slots per block.
pub const BLOCK: usize = 256;

/// What reading a page of a commit needs to know about the commit; shared
/// by its pages and freed with the last of them.
#[derive(Debug)]
pub struct CommitInfo {
    pub lsn: u64,
    /// Its pages are in the snapshot `snap/<lsn>`, not in `log/<lsn>`.
    pub snapshot: bool,
    /// Its pages are in group object `group/<lsn>/<g>` of a snapshot
    /// written as page groups (`page_groups.rs`); `snapshot` is then true.
    pub group: Option<u32>,
    pub txid: [u8; 16],
    /// Where its pages start in the object.
    pub data_offset: u64,
    pub chunk_size: u32,
}

impl CommitInfo {
    pub fn of(idx: &Index) -> CommitInfo {
        CommitInfo {
            lsn: idx.header.lsn,
            snapshot: idx.header.kind == KIND_SNAPSHOT,
            group: None,
            txid: idx.header.txid,
            data_offset: idx.header.data_offset,
            chunk_size: idx.header.chunk_size,
        }
    }
}

/// One stored page: where it is, its CRC, and its bytes while cached.
pub struct Page {
    /// The commit holding it.
    pub commit: Arc<CommitInfo>,
    /// Its entry in that commit's index.
    pub entry: u32,
    /// CRC-32 of the stored bytes.
    pub crc: u32,
    data: RwLock<Option<Arc<[u8]>>>,
    /// Read since the evictor last looked (second chance).
    referenced: AtomicBool,
    budget: Arc<Budget>,
}

impl Page {
    pub fn new(commit: Arc<CommitInfo>, entry: u32, crc: u32, budget: Arc<Budget>) -> Page {
        Page {
            commit,
            entry,
            crc,
            data: RwLock::new(None),
            referenced: AtomicBool::new(false),
            budget,
        }
    }

    /// The LSN of the commit holding it.
    pub fn lsn(&self) -> u64 {
        self.commit.lsn
    }

    /// Where it is in its commit object.
    pub fn range(&self) -> std::ops::Range<u64> {
        let c = u64::from(self.commit.chunk_size);
        let start = self.commit.data_offset + u64::from(self.entry) * c;
        start..start + c
    }

    /// Copies `dst.len()` bytes from offset `within` of the cached page;
    /// false when it is not cached.
    pub fn copy_to(&self, dst: &mut [u8], within: usize) -> bool {
        let data = self.data.read();
        let Some(d) = data.as_ref() else {
            return false;
        };
        dst.copy_from_slice(&d[within..within + dst.len()]);
        self.touch();
        true
    }

    /// The cached bytes, if any.
    pub fn cached(&self) -> Option<Arc<[u8]>> {
        let d = self.data.read().clone();
        if d.is_some() {
            self.touch();
        }
        d
    }

    fn touch(&self) {
        // Only write the flag when it changes: reads stay shared.
        if !self.referenced.load(Ordering::Relaxed) {
            self.referenced.store(true, Ordering::Relaxed);
        }
    }

    /// Sets the bytes; false if they were there already.
    pub(crate) fn set(&self, bytes: Arc<[u8]>) -> bool {
        let mut d = self.data.write();
        if d.is_some() {
            return false;
        }
        self.budget.add(bytes.len());
        *d = Some(bytes);
        true
    }

    /// Drops the bytes unless read since the last call; true if dropped
    /// (or already gone).
    pub(crate) fn evict_unless_referenced(&self) -> bool {
        if self.referenced.swap(false, Ordering::Relaxed) {
            return false;
        }
        if let Some(old) = self.data.write().take() {
            self.budget.sub(old.len());
        }
        true
    }
}

impl Drop for Page {
    fn drop(&mut self) {
        if let Some(old) = self.data.get_mut().take() {
            self.budget.sub(old.len());
        }
    }
}

type Block = Vec<Option<Arc<Page>>>;

/// A committed state.
#[derive(Clone)]
pub struct Version {
    pub lsn: u64,
    /// The transaction id of commit `lsn` (zeros for LSN 0): who a writer
    /// or reader expects to find at `log/<lsn>` (see `docs/object.md`, §14).
    pub txid: [u8; 16],
    /// Database size in bytes.
    pub size: u64,
    /// Chunk size; 0 while the database has never been written.
    pub chunk_size: u32,
    /// Commit time of the commit that made it (ms since the Unix epoch; 0
    /// for the empty database).
    pub time_ms: u64,
    /// Group commit (`group.rs`): 0 for a state read from the store; for a
    /// state this process's queue made, the queue sequence number of the
    /// newest transaction it holds. Two states with the same non-zero value
    /// hold the same bytes (the head is rebuilt on the uploaded commit
    /// with its value kept).
    pub local_seq: u64,
    /// It holds queued transactions the store does not have yet: its
    /// `lsn` and `txid` are those of the store state under them.
    pub unpublished: bool,
    blocks: Vec<Arc<Block>>,
}

impl Version {
    /// The empty database (LSN 0).
    pub fn empty() -> Version {
        Version {
            lsn: 0,
            txid: [0; 16],
            size: 0,
            chunk_size: 0,
            time_ms: 0,
            local_seq: 0,
            unpublished: false,
            blocks: Vec::new(),
        }
    }

    /// Whether `other` holds the same state: states a group commit queue
    /// made are told apart by their sequence number (an upload changes the
    /// LSN under the same bytes), others by LSN.
    pub fn same_state(&self, other: &Version) -> bool {
        if self.local_seq != 0 || other.local_seq != 0 {
            self.local_seq == other.local_seq
        } else {
            self.lsn == other.lsn
        }
    }

    /// The page holding chunk `chunk`; `None` for a hole (zeros). Callers
    /// only ask for chunks below the size.
    #[inline]
    pub fn page(&self, chunk: u64) -> Option<&Arc<Page>> {
        let c = usize::try_from(chunk).ok()?;
        self.blocks.get(c / BLOCK)?.get(c % BLOCK)?.as_ref()
    }

    /// This version with commit `idx` applied; `page(i, entry)` makes the
    /// page of entry `i`. The caller has checked that `idx` follows this
    /// version.
    pub fn apply(
        &self,
        idx: &Index,
        mut page: impl FnMut(usize, &Entry) -> Arc<Page>,
    ) -> Result<Version, String> {
        let h = &idx.header;
        if h.flags & FLAG_COLLECTED != 0 {
            return Err(format!(
                "commit {} was garbage-collected (a tombstone); the state is in a snapshot",
                h.lsn
            ));
        }
        // A snapshot is the whole database: it replaces every page.
        let full = h.flags & FLAG_FULL_IMAGE != 0 || h.kind == KIND_SNAPSHOT;
        if !full && self.size != 0 && h.chunk_size != self.chunk_size {
            return Err(format!(
                "commit {} changes the chunk size from {} to {} without a full image",
                h.lsn, self.chunk_size, h.chunk_size
            ));
        }
        let mut blocks = if full {
            Vec::new()
        } else {
            self.blocks.clone()
        };
        let count = usize::try_from(h.chunk_count())
            .map_err(|_| format!("commit {}: database too large", h.lsn))?;
        // Cut what lies past the new end (the block holding the end keeps
        // its head); a database that grows keeps every block it had.
        let wanted = count.div_ceil(BLOCK);
        if blocks.len() >= wanted {
            blocks.truncate(wanted);
            if let Some(last) = blocks.last_mut() {
                let keep = count - (wanted - 1) * BLOCK;
                if last.len() > keep {
                    Arc::make_mut(last).truncate(keep);
                }
            }
        }
        for (i, e) in idx.entries.iter().enumerate() {
            let c = e.chunk as usize;
            let (b, slot) = (c / BLOCK, c % BLOCK);
            while blocks.len() <= b {
                blocks.push(Arc::new(Vec::new()));
            }
            let block = Arc::make_mut(&mut blocks[b]);
            if block.len() <= slot {
                block.resize(slot + 1, None);
            }
            block[slot] = Some(page(i, e));
        }
        Ok(Version {
            lsn: h.lsn,
            txid: h.txid,
            size: h.db_size,
            chunk_size: h.chunk_size,
            time_ms: h.time_ms,
            local_seq: 0,
            unpublished: false,
            blocks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{NewCommit, decode_index, encode};

    fn commit(lsn: u64, size: u64, chunk: u32, flags: u32, pages: &[u32]) -> Index {
        let data: Vec<Vec<u8>> = pages
            .iter()
            .map(|&p| vec![p as u8; chunk as usize])
            .collect();
        let pairs: Vec<(u32, &[u8])> = pages.iter().zip(&data).map(|(&p, d)| (p, &d[..])).collect();
        let bytes = encode(&NewCommit {
            lsn,
            txid: [0; 16],
            db_size: size,
            chunk_size: chunk,
            time_ms: 0,
            flags,
            pages: &pairs,
        });
        decode_index(&bytes, None).unwrap()
    }

    fn apply(v: &Version, idx: &Index) -> Result<Version, String> {
        let budget = Arc::new(Budget::default());
        let info = Arc::new(CommitInfo::of(idx));
        v.apply(idx, |i, e| {
            Arc::new(Page::new(info.clone(), i as u32, e.crc, budget.clone()))
        })
    }

    #[test]
    fn apply_grow_overwrite_shrink_and_holes() {
        let v0 = Version::empty();
        assert!(v0.page(0).is_none());
        let far = BLOCK as u32 + 3;
        let size = u64::from(far + 1) * 512;
        let v1 = apply(&v0, &commit(1, size, 512, 0, &[0, 1, far])).unwrap();
        assert_eq!(v1.page(0).unwrap().lsn(), 1);
        assert!(v1.page(2).is_none(), "hole");
        assert_eq!(v1.page(u64::from(far)).unwrap().entry, 2);
        let v2 = apply(&v1, &commit(2, 2 * 512, 512, 0, &[1])).unwrap();
        assert_eq!(v2.page(0).unwrap().lsn(), 1);
        assert_eq!(v2.page(1).unwrap().lsn(), 2);
        assert!(v2.page(u64::from(far)).is_none(), "cut off");
        // Growing again does not bring cut-off pages back.
        let v3 = apply(&v2, &commit(3, size, 512, 0, &[0])).unwrap();
        assert!(v3.page(u64::from(far)).is_none());
        // The older versions are untouched.
        assert_eq!(v1.page(1).unwrap().lsn(), 1);
        assert_eq!(v1.page(u64::from(far)).unwrap().lsn(), 1);
        // A chunk-size change needs a full image.
        assert!(apply(&v2, &commit(3, 2048, 1024, 0, &[0])).is_err());
        let v3 = apply(&v2, &commit(3, 2048, 1024, FLAG_FULL_IMAGE, &[0, 1])).unwrap();
        assert_eq!(v3.chunk_size, 1024);
        assert_eq!(v3.page(1).unwrap().lsn(), 3);
    }

    #[test]
    fn growing_past_a_full_block_keeps_every_page() {
        let n = BLOCK as u32;
        let all: Vec<u32> = (0..n).collect();
        let v1 = apply(
            &Version::empty(),
            &commit(1, u64::from(n) * 512, 512, 0, &all),
        )
        .unwrap();
        // Grow to 1.5 blocks, writing only the new tail page.
        let grown = n + n / 2;
        let v2 = apply(
            &v1,
            &commit(2, u64::from(grown) * 512, 512, 0, &[grown - 1]),
        )
        .unwrap();
        for c in 0..u64::from(n) {
            assert_eq!(v2.page(c).map(|p| p.lsn()), Some(1), "chunk {c} lost");
        }
        assert_eq!(v2.page(u64::from(grown - 1)).unwrap().lsn(), 2);
        // Shrink into the first block: its tail goes, its head stays.
        let v3 = apply(&v2, &commit(3, 10 * 512, 512, 0, &[])).unwrap();
        assert!(v3.page(9).is_some() && v3.page(10).is_none());
        let v4 = apply(&v3, &commit(4, u64::from(grown) * 512, 512, 0, &[])).unwrap();
        assert!(v4.page(10).is_none() && v4.page(u64::from(n)).is_none());
    }

    /// Random commits (growth, shrinking, overwrites, holes, full images)
    /// against a plain model: chunk → LSN of its page, or a hole.
    #[test]
    fn page_map_matches_a_model_over_random_commits() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(23);
        let mut v = Version::empty();
        let mut model: Vec<Option<u64>> = Vec::new();
        for lsn in 1..=400u64 {
            let count = match rng.gen_range(0..10) {
                0 => rng.gen_range(0..8),
                1..=3 => model.len() + rng.gen_range(0..3 * BLOCK),
                4..=5 => model.len().saturating_sub(rng.gen_range(0..2 * BLOCK)),
                _ => model.len().max(1),
            };
            let full = rng.gen_range(0..25) == 0;
            let mut pages: Vec<u32> = if full {
                (0..count as u32).collect()
            } else {
                (0..rng.gen_range(0..40))
                    .filter(|_| count > 0)
                    .map(|_| rng.gen_range(0..count) as u32)
                    .collect()
            };
            pages.sort_unstable();
            pages.dedup();
            let idx = commit(
                lsn,
                count as u64 * 512,
                512,
                if full { FLAG_FULL_IMAGE } else { 0 },
                &pages,
            );
            v = apply(&v, &idx).unwrap();
            if full {
                model.clear();
            }
            model.resize(count, None);
            for &p in &pages {
                model[p as usize] = Some(lsn);
            }
            for (c, want) in model.iter().enumerate() {
                assert_eq!(
                    v.page(c as u64).map(|p| p.lsn()),
                    *want,
                    "LSN {lsn}, chunk {c}"
                );
            }
        }
    }

    #[test]
    fn cached_bytes_are_accounted_and_released() {
        let budget = Arc::new(Budget::default());
        let info = Arc::new(CommitInfo {
            lsn: 1,
            snapshot: false,
            group: None,
            txid: [0; 16],
            data_offset: 96,
            chunk_size: 100,
        });
        let p = Page::new(info, 0, 0, budget.clone());
        assert_eq!(p.range(), 96..196);
        assert!(p.set(vec![1u8; 100].into()));
        assert!(!p.set(vec![2u8; 100].into()));
        assert_eq!(budget.used(), 100);
        let mut b = [0u8; 4];
        assert!(p.copy_to(&mut b, 10));
        assert!(!p.evict_unless_referenced(), "second chance");
        assert!(p.evict_unless_referenced());
        assert_eq!(budget.used(), 0);
        assert!(!p.copy_to(&mut b, 0));
        p.set(vec![3u8; 50].into());
        drop(p);
        assert_eq!(budget.used(), 0);
    }
}
