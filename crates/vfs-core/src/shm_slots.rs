//! The WAL-index lock table of one shared-memory group: eight slots, each
//! one atomic word, so that the lock a WAL reader takes and drops on its
//! read mark in every read transaction is one compare-and-swap and one
//! subtraction, with no mutex.
//!
//! A slot's word is the number of connections holding it shared (low
//! bits), or [`EXCLUSIVE`] alone when one connection holds it exclusively,
//! or [`CLAIMED`] alone while an exclusive request over several slots is
//! being decided. Such a request must be all or nothing, and slot words
//! cannot change together; so it runs under the table's mutex, marks the
//! slots it needs one by one (each from 0 to `CLAIMED`), then makes them
//! all [`EXCLUSIVE`], or puts back the ones it marked if one is held. Any
//! operation that meets a `CLAIMED` word waits for that mutex before it
//! decides, so nobody ever answers on a slot held only for an instant by a
//! request that then fails: every operation takes effect at one instant,
//! as if the whole table were under one lock (what `tests/lock_model.rs`
//! checks, against a model and under threads). Nothing waits while holding
//! the mutex, so the wait is as short as one failed request.

use std::sync::atomic::{AtomicU32, Ordering};

use parking_lot::{Mutex, MutexGuard};

use crate::shm::SHM_LOCK_SLOTS;
use crate::{Error, Result, codes};

/// The word of a slot held exclusively (its count is then 0).
const EXCLUSIVE: u32 = 1 << 31;
/// The word of a slot marked by an exclusive request still deciding.
const CLAIMED: u32 = 1 << 30;
/// The bits counting shared holders.
const COUNT: u32 = CLAIMED - 1;

/// The eight slots and the mutex of multi-slot exclusive requests.
#[derive(Default)]
pub(crate) struct SlotTable {
    words: [AtomicU32; SHM_LOCK_SLOTS as usize],
    deciding: Mutex<()>,
}

/// What to do about a word that an operation found.
enum Seen {
    /// Decide on this value.
    Settled(u32),
    /// A request is deciding: wait for the mutex, then look again.
    Claimed,
}

fn settled(word: u32) -> Seen {
    if word & CLAIMED != 0 {
        Seen::Claimed
    } else {
        Seen::Settled(word)
    }
}

impl SlotTable {
    /// Per slot: shared holders, or -1 when held exclusively (SQLite's
    /// `aLock`), for `Debug`. A slot being decided shows as 0.
    pub(crate) fn snapshot(&self) -> [i32; SHM_LOCK_SLOTS as usize] {
        std::array::from_fn(|i| {
            let w = self.words[i].load(Ordering::Relaxed);
            if w & EXCLUSIVE != 0 {
                -1
            } else {
                (w & COUNT) as i32
            }
        })
    }

    /// Runs `decide` on `slot`'s word until it settles: `decide` answers
    /// the new word (or an error, the word unchanged); a `CLAIMED` word
    /// first waits for the request deciding it. `Acquire` on success, as
    /// taking a mutex would be.
    fn update(&self, slot: usize, decide: impl Fn(u32) -> Result<u32>) -> Result<()> {
        let word = &self.words[slot];
        let mut guard: Option<MutexGuard<'_, ()>> = None;
        let mut current = word.load(Ordering::Acquire);
        loop {
            let seen = match settled(current) {
                Seen::Settled(w) => w,
                Seen::Claimed if guard.is_none() => {
                    guard = Some(self.deciding.lock());
                    current = word.load(Ordering::Acquire);
                    continue;
                }
                // Only the mutex's holder claims slots, and it has put
                // every claim back or made it EXCLUSIVE before unlocking.
                Seen::Claimed => {
                    return Err(Error::new(
                        codes::SQLITE_IOERR_SHMLOCK,
                        "wal-index slot claimed by nobody",
                    ));
                }
            };
            let new = decide(seen)?;
            match word.compare_exchange_weak(current, new, Ordering::Acquire, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(now) => current = now,
            }
        }
    }

    /// One more shared holder of `slot`; `SQLITE_BUSY` when it is held
    /// exclusively. The caller does not hold it.
    #[inline]
    pub(crate) fn lock_shared(&self, slot: usize) -> Result<()> {
        let word = &self.words[slot];
        let current = word.load(Ordering::Relaxed);
        // Below COUNT: neither EXCLUSIVE nor CLAIMED, and room to count.
        if current < COUNT
            && word
                .compare_exchange_weak(current, current + 1, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
        {
            return Ok(());
        }
        self.lock_shared_slowly(slot)
    }

    /// [`Self::lock_shared`] when the first try did not settle it.
    #[cold]
    fn lock_shared_slowly(&self, slot: usize) -> Result<()> {
        self.update(slot, |w| {
            if w & EXCLUSIVE != 0 {
                return Err(Error::busy("wal-index slot held exclusively"));
            }
            if w & COUNT == COUNT {
                return Err(Error::new(
                    codes::SQLITE_IOERR_SHMLOCK,
                    "too many shared holders of a wal-index slot",
                ));
            }
            Ok(w + 1)
        })
    }

    /// One shared holder fewer: the caller holds `slot` shared, so the word
    /// is a count of at least 1 and nobody can claim it meanwhile.
    #[inline]
    pub(crate) fn unlock_shared(&self, slot: usize) {
        self.words[slot].fetch_sub(1, Ordering::Release);
    }

    /// Releases `slot`, which the caller holds exclusively: nobody else
    /// changes an `EXCLUSIVE` word.
    pub(crate) fn unlock_exclusive(&self, slot: usize) {
        self.words[slot].store(0, Ordering::Release);
    }

    /// Takes every slot of `mask` not in `mine` (those the caller already
    /// holds exclusively) exclusively, all or none; `SQLITE_BUSY` when any
    /// of them has a holder, the caller's own shared lock included.
    pub(crate) fn lock_exclusive(&self, mask: u16, mine: u16) -> Result<()> {
        let wanted = mask & !mine;
        if wanted.count_ones() == 1 {
            // One slot changes in one step, so there is nothing to decide
            // and no mark: wait only for a request deciding this slot.
            let slot = wanted.trailing_zeros() as usize;
            return self.update(slot, |w| {
                if w == 0 {
                    Ok(EXCLUSIVE)
                } else {
                    Err(Error::busy("wal-index slot in use"))
                }
            });
        }
        let _deciding = self.deciding.lock();
        let mut claimed = 0u16;
        for slot in 0..SHM_LOCK_SLOTS as usize {
            let bit = 1u16 << slot;
            if wanted & bit == 0 {
                continue;
            }
            // No other claim exists while this thread holds the mutex.
            if self.words[slot]
                .compare_exchange(0, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                self.put_back(claimed);
                return Err(Error::busy("wal-index slot in use"));
            }
            claimed |= bit;
        }
        for slot in slots_of(claimed) {
            self.words[slot].store(EXCLUSIVE, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Undoes the claims of a request that failed: nobody else changes a
    /// `CLAIMED` word.
    fn put_back(&self, claimed: u16) {
        for slot in slots_of(claimed) {
            self.words[slot].store(0, Ordering::Release);
        }
    }
}

/// The slot numbers whose bits are set in `mask`.
pub(crate) fn slots_of(mask: u16) -> impl Iterator<Item = usize> {
    (0..SHM_LOCK_SLOTS as usize).filter(move |s| mask & (1 << s) != 0)
}
