//! In-process WAL shared memory: 32 KiB regions and the 8-slot lock table.
//!
//! A backend opts in by returning [`ShmSupport::Group`](crate::ShmSupport)
//! from [`File::shm`](crate::File::shm) with one `Arc<ShmGroup>` per
//! database; the dispatcher does the rest (mapping, locking, barrier,
//! unmapping). See `docs/wal.md`.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::shm_slots::{SlotTable, slots_of};
use crate::{Error, Result, codes};

/// Number of WAL-index lock slots (`SQLITE_SHM_NLOCK`).
pub const SHM_LOCK_SLOTS: u32 = 8;

/// A pointer to one mapped region of shared memory, handed to SQLite.
///
/// Only vfs-core creates these: a backend never touches shared memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShmRegion {
    ptr: NonNull<u8>,
    read_only: bool,
}

impl ShmRegion {
    pub(crate) fn from_ptr(p: *mut u8) -> Option<ShmRegion> {
        NonNull::new(p).map(|ptr| ShmRegion {
            ptr,
            read_only: false,
        })
    }

    /// A mapping SQLite may only read (the platform VFS maps a read-only
    /// `-shm` file so; SQLite then gets the pointer with `SQLITE_READONLY`).
    pub(crate) fn read_only(self) -> ShmRegion {
        ShmRegion {
            read_only: true,
            ..self
        }
    }

    /// Whether SQLite may only read this region.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    pub(crate) fn as_ptr(self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

/// What an `xShmLock` call asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShmLockOp {
    /// Take shared locks.
    LockShared,
    /// Take exclusive locks.
    LockExclusive,
    /// Release shared locks.
    UnlockShared,
    /// Release exclusive locks.
    UnlockExclusive,
}

impl ShmLockOp {
    /// Decodes `SQLITE_SHM_*` flags.
    pub fn from_flags(flags: i32) -> Option<ShmLockOp> {
        use libsqlite3_sys::{
            SQLITE_SHM_EXCLUSIVE, SQLITE_SHM_LOCK, SQLITE_SHM_SHARED, SQLITE_SHM_UNLOCK,
        };
        Some(match flags {
            f if f == SQLITE_SHM_LOCK | SQLITE_SHM_SHARED => ShmLockOp::LockShared,
            f if f == SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE => ShmLockOp::LockExclusive,
            f if f == SQLITE_SHM_UNLOCK | SQLITE_SHM_SHARED => ShmLockOp::UnlockShared,
            f if f == SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE => ShmLockOp::UnlockExclusive,
            _ => return None,
        })
    }

    /// The `SQLITE_SHM_*` flags.
    pub fn to_flags(self) -> i32 {
        use libsqlite3_sys::{
            SQLITE_SHM_EXCLUSIVE, SQLITE_SHM_LOCK, SQLITE_SHM_SHARED, SQLITE_SHM_UNLOCK,
        };
        match self {
            ShmLockOp::LockShared => SQLITE_SHM_LOCK | SQLITE_SHM_SHARED,
            ShmLockOp::LockExclusive => SQLITE_SHM_LOCK | SQLITE_SHM_EXCLUSIVE,
            ShmLockOp::UnlockShared => SQLITE_SHM_UNLOCK | SQLITE_SHM_SHARED,
            ShmLockOp::UnlockExclusive => SQLITE_SHM_UNLOCK | SQLITE_SHM_EXCLUSIVE,
        }
    }
}

/// One zeroed, 8-byte-aligned heap block whose address never changes while
/// it lives. SQLite reads and writes it concurrently through raw pointers, so
/// Rust never forms a reference to its contents.
struct Region {
    ptr: NonNull<u8>,
    layout: Layout,
}

// SAFETY: the region is plain memory reached only through raw pointers by
// SQLite (which synchronises through the lock table and barriers); the Rust
// side only allocates and frees it under the group mutex.
unsafe impl Send for Region {}

impl Region {
    fn new(size: usize) -> Result<Region> {
        let layout = Layout::from_size_align(size.max(8), 8)
            .map_err(|_| Error::new(codes::SQLITE_IOERR_SHMSIZE, "bad shm region size"))?;
        // SAFETY: layout has non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw)
            .ok_or_else(|| Error::new(codes::SQLITE_IOERR_NOMEM, "out of memory for shm region"))?;
        Ok(Region { ptr, layout })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: allocated by alloc_zeroed with this layout; freed once, and
        // only when no connection of the group maps it any more.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// The shared memory of one database: its WAL-index regions and lock table,
/// shared by every connection that maps it.
#[derive(Default)]
pub struct ShmGroup {
    inner: Mutex<GroupInner>,
    /// The lock table, outside the mutex: a read mark's shared lock and
    /// unlock are one atomic operation each (see `shm_slots.rs`).
    slots: SlotTable,
}

#[derive(Default)]
struct GroupInner {
    regions: Vec<Region>,
    region_size: usize,
    /// Connections that have mapped the group and not yet unmapped.
    connections: usize,
}

static ACTIVE_GROUPS: AtomicUsize = AtomicUsize::new(0);
static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// How many shared-memory groups have at least one connection mapped. Zero
/// once every WAL connection of the process has closed.
pub fn active_groups() -> usize {
    ACTIVE_GROUPS.load(Ordering::SeqCst)
}

impl std::fmt::Debug for ShmGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.inner.lock();
        f.debug_struct("ShmGroup")
            .field("regions", &g.regions.len())
            .field("connections", &g.connections)
            .field("slots", &self.slots.snapshot())
            .finish()
    }
}

impl ShmGroup {
    /// A new, empty group.
    pub fn new() -> Arc<ShmGroup> {
        Arc::new(ShmGroup::default())
    }

    /// Connections currently mapping this group.
    pub fn connections(&self) -> usize {
        self.inner.lock().connections
    }

    /// Regions currently allocated.
    pub fn regions(&self) -> usize {
        self.inner.lock().regions.len()
    }

    /// A connection's view of the group (maps nothing yet).
    pub fn connect(self: &Arc<Self>) -> ShmConnection {
        ShmConnection {
            group: Arc::clone(self),
            held: 0,
            mapped: false,
            _id: NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// Where a connection's exclusive slots start in its `held` word.
const EXCLUSIVE_SHIFT: u32 = 16;

/// `mask`'s slots, shared or exclusive, in a `held` word.
fn both(mask: u16) -> u32 {
    u32::from(mask) | u32::from(mask) << EXCLUSIVE_SHIFT
}

/// One connection's view of a [`ShmGroup`]: which slots it holds and whether
/// it has mapped the group. Dropping it unmaps (without delete).
pub struct ShmConnection {
    group: Arc<ShmGroup>,
    /// The slots held: shared ones in bits 0–7, exclusive ones in bits
    /// 16–23. One word, read and written whole: a reader's lock and unlock
    /// follow each other closely, and a load that spans two smaller
    /// stores waits for them to reach the cache (with two `u16` fields
    /// that load took most of the samples of `perf annotate` on the
    /// criterion bench).
    held: u32,
    mapped: bool,
    _id: u64,
}

impl ShmConnection {
    /// Maps region `region` of `size` bytes. With `extend == false` a region
    /// that does not exist yet answers `None`.
    pub fn map(&mut self, region: u32, size: u32, extend: bool) -> Result<Option<ShmRegion>> {
        let mut g = self.group.inner.lock();
        if !self.mapped {
            self.mapped = true;
            g.connections += 1;
            if g.connections == 1 {
                ACTIVE_GROUPS.fetch_add(1, Ordering::SeqCst);
            }
        }
        let size = size as usize;
        if g.regions.is_empty() {
            g.region_size = size;
        } else if g.region_size != size {
            return Err(Error::new(
                codes::SQLITE_IOERR_SHMSIZE,
                format!(
                    "shm region size {size} differs from the group's {}",
                    g.region_size
                ),
            ));
        }
        let region = region as usize;
        while g.regions.len() <= region {
            if !extend {
                return Ok(None);
            }
            g.regions.push(Region::new(size)?);
        }
        Ok(ShmRegion::from_ptr(g.regions[region].ptr.as_ptr()))
    }

    /// Takes or releases locks `offset..offset + n`, with the semantics of
    /// SQLite's `unixShmLock` (in-process part).
    pub fn lock(&mut self, offset: u32, n: u32, op: ShmLockOp) -> Result<()> {
        if n == 1 && offset < SHM_LOCK_SLOTS {
            // A reader's read mark, locked and unlocked in every read
            // transaction: the same rules as below, in fewer steps.
            let bit = 1u16 << offset;
            let held = self.held & both(bit);
            match op {
                ShmLockOp::LockShared if held == 0 => {
                    self.group.slots.lock_shared(offset as usize)?;
                    self.held |= u32::from(bit);
                    return Ok(());
                }
                ShmLockOp::UnlockShared if held == u32::from(bit) => {
                    self.group.slots.unlock_shared(offset as usize);
                    self.held &= !u32::from(bit);
                    return Ok(());
                }
                _ => {}
            }
        }
        if n == 0 || offset + n > SHM_LOCK_SLOTS {
            return Err(Error::new(
                codes::SQLITE_IOERR_SHMLOCK,
                format!("shm lock range {offset}+{n} outside the 8 slots"),
            ));
        }
        let mask: u16 = ((1u32 << (offset + n)) - (1u32 << offset)) as u16;
        let slots = &self.group.slots;
        match op {
            ShmLockOp::UnlockShared | ShmLockOp::UnlockExclusive => {
                self.release(mask);
                Ok(())
            }
            ShmLockOp::LockShared => {
                if n != 1 {
                    return Err(Error::new(
                        codes::SQLITE_IOERR_SHMLOCK,
                        "shared shm locks are taken one slot at a time",
                    ));
                }
                if self.held & both(mask) != 0 {
                    return Ok(());
                }
                slots.lock_shared(offset as usize)?;
                self.held |= u32::from(mask);
                Ok(())
            }
            ShmLockOp::LockExclusive => {
                let mine = self.exclusive_mask();
                if mine & mask == mask {
                    return Ok(());
                }
                // Any holder, this connection's own shared lock included,
                // blocks an exclusive lock (as in SQLite).
                slots.lock_exclusive(mask, mine)?;
                self.held |= u32::from(mask) << EXCLUSIVE_SHIFT;
                Ok(())
            }
        }
    }

    /// Releases the slots of `mask` this connection holds, shared or
    /// exclusive.
    fn release(&mut self, mask: u16) {
        let slots = &self.group.slots;
        let held = self.held;
        self.held = held & !both(mask);
        let shared = held as u16 & mask;
        let exclusive = (held >> EXCLUSIVE_SHIFT) as u16 & mask;
        if exclusive == 0 && shared.is_power_of_two() {
            // A reader leaving its read mark.
            slots.unlock_shared(shared.trailing_zeros() as usize);
            return;
        }
        for slot in slots_of(exclusive) {
            slots.unlock_exclusive(slot);
        }
        for slot in slots_of(shared) {
            slots.unlock_shared(slot);
        }
    }

    /// Unmaps this connection: releases its locks and, when it was the last
    /// connection mapping the group, frees the regions (a later map starts
    /// from a zeroed index, which SQLite rebuilds from the WAL file).
    ///
    /// Locks are only ever released by the connection holding them: a
    /// connection may lock slots without mapping (vfs-memdb's `export` holds
    /// the checkpoint slot that way), and the last mapper leaving must not
    /// take its locks away, or two checkpointers could run at once.
    pub fn unmap(&mut self, _delete: bool) {
        self.release(u16::MAX);
        if self.mapped {
            let mut g = self.group.inner.lock();
            self.mapped = false;
            g.connections -= 1;
            if g.connections == 0 {
                g.regions.clear();
                ACTIVE_GROUPS.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// The slots this connection holds shared (bit i = slot i).
    pub fn shared_mask(&self) -> u16 {
        self.held as u16
    }

    /// The slots this connection holds exclusively.
    pub fn exclusive_mask(&self) -> u16 {
        (self.held >> EXCLUSIVE_SHIFT) as u16
    }
}

impl Drop for ShmConnection {
    fn drop(&mut self) {
        self.unmap(false);
    }
}

#[cfg(test)]
mod tests {
    use super::ShmLockOp::*;
    use super::*;

    fn busy(r: Result<()>) -> bool {
        matches!(r, Err(e) if e.code() == Some(codes::SQLITE_BUSY))
    }

    #[test]
    fn shared_beside_shared_exclusive_alone() {
        let g = ShmGroup::new();
        let (mut a, mut b) = (g.connect(), g.connect());
        a.lock(3, 1, LockShared).unwrap();
        b.lock(3, 1, LockShared).unwrap();
        assert!(
            busy(a.lock(3, 1, LockExclusive)),
            "own shared + other shared"
        );
        b.lock(3, 1, UnlockShared).unwrap();
        // Own shared lock still blocks an exclusive one, as in unixShmLock.
        assert!(busy(a.lock(3, 1, LockExclusive)));
        a.lock(3, 1, UnlockShared).unwrap();
        a.lock(3, 1, LockExclusive).unwrap();
        assert!(busy(b.lock(3, 1, LockShared)));
        assert!(busy(b.lock(3, 1, LockExclusive)));
    }

    #[test]
    fn own_downgrade_and_upgrade() {
        let g = ShmGroup::new();
        let (mut a, mut b) = (g.connect(), g.connect());
        a.lock(0, 1, LockExclusive).unwrap();
        a.lock(0, 1, UnlockExclusive).unwrap();
        a.lock(0, 1, LockShared).unwrap();
        b.lock(0, 1, LockShared).unwrap();
        a.lock(0, 1, UnlockShared).unwrap();
        b.lock(0, 1, UnlockShared).unwrap();
        b.lock(0, 1, LockExclusive).unwrap();
        assert_eq!(b.exclusive_mask(), 1);
        assert_eq!(a.shared_mask(), 0);
    }

    #[test]
    fn range_locks_are_all_or_nothing() {
        let g = ShmGroup::new();
        let (mut a, mut b) = (g.connect(), g.connect());
        b.lock(5, 1, LockShared).unwrap();
        assert!(busy(a.lock(3, 5, LockExclusive)));
        assert_eq!(a.exclusive_mask(), 0, "nothing taken on failure");
        a.lock(3, 2, LockExclusive).unwrap();
        assert_eq!(a.exclusive_mask(), 0b0001_1000);
        // Unlock of a range releases only what this connection holds.
        b.lock(3, 5, UnlockExclusive).unwrap();
        assert!(busy(b.lock(3, 1, LockShared)));
        a.lock(3, 2, UnlockExclusive).unwrap();
        b.lock(3, 1, LockShared).unwrap();
    }

    #[test]
    fn bad_ranges_are_errors() {
        let g = ShmGroup::new();
        let mut a = g.connect();
        assert!(a.lock(7, 2, LockExclusive).is_err());
        assert!(a.lock(0, 0, LockShared).is_err());
        assert!(a.lock(3, 2, LockShared).is_err());
    }

    #[test]
    fn a_lock_held_without_mapping_survives_the_last_unmap() {
        let g = ShmGroup::new();
        let (mut mapper, mut holder, mut other) = (g.connect(), g.connect(), g.connect());
        mapper.map(0, 32768, true).unwrap();
        // Like memdb's export: the checkpoint slot, taken without mapping.
        holder.lock(1, 1, LockExclusive).unwrap();
        mapper.lock(3, 1, LockShared).unwrap();
        mapper.unmap(false);
        assert_eq!(g.connections(), 0);
        assert_eq!(g.regions(), 0, "the last mapper frees the regions");
        other.map(0, 32768, true).unwrap();
        assert!(busy(other.lock(1, 1, LockExclusive)), "still held");
        other.lock(3, 1, LockExclusive).unwrap();
        // The holder's release frees its own lock, not someone else's.
        other.lock(3, 1, UnlockExclusive).unwrap();
        let mut third = g.connect();
        third.lock(3, 1, LockExclusive).unwrap();
        holder.unmap(false);
        other.lock(1, 1, LockExclusive).unwrap();
        assert!(busy(third.lock(1, 1, LockExclusive)));
        assert!(busy(other.lock(3, 1, LockShared)), "third still holds 3");
    }

    #[test]
    fn unmap_releases_locks_and_last_frees_memory() {
        let g = ShmGroup::new();
        let (mut a, mut b) = (g.connect(), g.connect());
        assert_eq!(a.map(0, 32768, false).unwrap(), None);
        let r0 = a.map(0, 32768, true).unwrap().unwrap();
        assert_eq!(b.map(0, 32768, false).unwrap(), Some(r0), "same address");
        b.map(2, 32768, true).unwrap().unwrap();
        assert_eq!(g.regions(), 3);
        assert!(a.map(0, 4096, true).is_err(), "size mismatch");
        a.lock(0, 1, LockExclusive).unwrap();
        a.unmap(false);
        assert_eq!(g.connections(), 1);
        b.lock(0, 1, LockExclusive).unwrap();
        assert_eq!(g.regions(), 3, "b still maps");
        drop(b);
        assert_eq!(g.regions(), 0);
        assert_eq!(g.connections(), 0);
        // A later map starts zeroed.
        let mut c = g.connect();
        let p = c.map(0, 32768, true).unwrap().unwrap();
        // SAFETY: test reads the first byte of a live region it just mapped.
        assert_eq!(unsafe { *p.as_ptr() }, 0);
    }
}
