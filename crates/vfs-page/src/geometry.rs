//! What every handle of one database knows of its page size and reserve.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

const UNKNOWN: u32 = u32::MAX;

/// Page size and reserve of one database, shared by its main file, journal
/// and WAL handles opened through the same [`PageVfs`](crate::PageVfs).
#[derive(Debug)]
pub(crate) struct PageGeometry {
    page_size: AtomicU32,
    reserve: AtomicU32,
    /// Bumped whenever a handle sees page 1 with a page size or reserve
    /// different from the ones above, so other handles of the database in
    /// this process re-read the header (in WAL mode a reader never unlocks
    /// the database file between transactions).
    generation: AtomicU64,
}

impl PageGeometry {
    pub(crate) fn new() -> PageGeometry {
        PageGeometry {
            page_size: AtomicU32::new(UNKNOWN),
            reserve: AtomicU32::new(UNKNOWN),
            generation: AtomicU64::new(0),
        }
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records what page 1 says; returns the generation it is current for.
    pub(crate) fn observe(&self, p: usize, r: usize) -> u64 {
        let old_p = self.page_size.swap(p as u32, Ordering::AcqRel);
        let old_r = self.reserve.swap(r as u32, Ordering::AcqRel);
        let changed =
            (old_p != UNKNOWN && old_p != p as u32) || (old_r != UNKNOWN && old_r != r as u32);
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel) + 1
        } else {
            self.generation()
        }
    }

    pub(crate) fn set_page_size(&self, p: usize) {
        self.page_size.store(p as u32, Ordering::Relaxed);
    }

    pub(crate) fn set_reserve(&self, r: usize) {
        self.reserve.store(r as u32, Ordering::Relaxed);
    }

    pub(crate) fn page_size(&self) -> Option<usize> {
        match self.page_size.load(Ordering::Relaxed) {
            UNKNOWN => None,
            p => Some(p as usize),
        }
    }

    pub(crate) fn reserve(&self) -> Option<usize> {
        match self.reserve.load(Ordering::Relaxed) {
            UNKNOWN => None,
            r => Some(r as usize),
        }
    }
}
