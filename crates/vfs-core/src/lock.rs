//! The in-process lock manager: SQLite's five lock levels for files that many
//! connections of one process share.
//!
//! The state of a file is one 64-bit word: the number of connections
//! holding `SHARED` or more (low 32 bits) and the level of the one
//! connection holding `RESERVED` or more, if any (bits 32–33). Every lock
//! is one compare-and-swap on that word and every unlock one subtraction,
//! so a reader's `SHARED` (the call every read transaction of a
//! rollback-journal database makes, twice with its unlock) costs one atomic
//! operation where a mutex cost two, and readers never wait for each other.
//! Each operation decides on one value of the word and changes it in the
//! same atomic step (or fails and retries), so every interleaving of
//! threads is some sequence of whole operations, which
//! `tests/lock_model.rs` checks against SQLite's rules.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Error, LockLevel, Result};

/// The state of one shared file. Keep one per file (in an `Arc`) and
/// give every open handle its own [`FileLock`] with [`LockManager::connect`].
///
/// The rules are SQLite's (`os_unix.c`, in-process part):
/// any number of `Shared`; one `Reserved` beside them; `Pending` (taken on the
/// way to `Exclusive`) admits no new `Shared`; `Exclusive` only when no other
/// connection holds `Shared`. A conflict answers `SQLITE_BUSY`.
///
/// ```
/// use vfs_core::{LockLevel, LockManager};
/// let file = LockManager::new();
/// let (mut a, mut b) = (file.connect(), file.connect());
/// a.lock(LockLevel::Shared).unwrap();
/// b.lock(LockLevel::Shared).unwrap();
/// a.lock(LockLevel::Reserved).unwrap();
/// assert!(b.lock(LockLevel::Reserved).is_err());       // one writer
/// assert!(a.lock(LockLevel::Exclusive).is_err());      // b still reads
/// assert_eq!(a.level(), LockLevel::Pending);           // …so a waits at Pending
/// b.unlock(LockLevel::None).unwrap();
/// a.lock(LockLevel::Exclusive).unwrap();
/// ```
#[derive(Debug, Default)]
pub struct LockManager {
    /// `shared count | writer level << 32` (see the module docs).
    state: AtomicU64,
}

/// Bits of the word counting connections at `Shared` or more.
const SHARED_MASK: u64 = 0xFFFF_FFFF;
/// Where the writer's level starts in the word.
const WRITER_SHIFT: u32 = 32;
/// Writer levels as stored in the word (0: no writer).
const RESERVED: u64 = 1;
const PENDING: u64 = 2;
const EXCLUSIVE: u64 = 3;

fn shared(state: u64) -> u64 {
    state & SHARED_MASK
}

fn writer(state: u64) -> u64 {
    state >> WRITER_SHIFT
}

fn with_writer(state: u64, level: u64) -> u64 {
    shared(state) | level << WRITER_SHIFT
}

/// The writer code of a level at `Reserved` or above.
fn writer_code(level: LockLevel) -> u64 {
    match level {
        LockLevel::Reserved => RESERVED,
        LockLevel::Pending => PENDING,
        LockLevel::Exclusive => EXCLUSIVE,
        LockLevel::None | LockLevel::Shared => 0,
    }
}

/// One connection's handle on a [`LockManager`]. Dropping it releases every
/// lock it holds.
///
/// Invariant: this handle's level is `Reserved` or above exactly when the
/// word's writer field is its own (only the holder changes a non-zero
/// writer field), and it counts once in the shared count exactly when its
/// level is `Shared` or above.
#[derive(Debug)]
pub struct FileLock {
    manager: Arc<LockManager>,
    level: LockLevel,
}

impl LockManager {
    /// A new, unlocked file.
    pub fn new() -> Arc<LockManager> {
        Arc::new(LockManager::default())
    }

    /// A handle for one more connection, holding no lock.
    pub fn connect(self: &Arc<Self>) -> FileLock {
        FileLock {
            manager: Arc::clone(self),
            level: LockLevel::None,
        }
    }

    /// Whether any connection holds `Reserved` or stronger.
    pub fn is_reserved(&self) -> bool {
        writer(self.state.load(Ordering::Acquire)) != 0
    }

    /// How many connections hold at least `Shared`.
    pub fn readers(&self) -> u32 {
        shared(self.state.load(Ordering::Acquire)) as u32
    }

    /// Replaces the word by `next(current)` in one step, retrying while
    /// other connections change it; `next` answers `Err` to give up (the
    /// word unchanged).
    fn update(&self, mut next: impl FnMut(u64) -> Result<u64>) -> Result<u64> {
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let new = next(current)?;
            if new == current {
                return Ok(new);
            }
            match self.state.compare_exchange_weak(
                current,
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(new),
                Err(seen) => current = seen,
            }
        }
    }
}

impl FileLock {
    /// The level this connection holds.
    pub fn level(&self) -> LockLevel {
        self.level
    }

    /// Raises this connection's lock to `level`; `SQLITE_BUSY` on conflict.
    /// A request at or below the current level is a no-op.
    pub fn lock(&mut self, level: LockLevel) -> Result<()> {
        if level <= self.level {
            return Ok(());
        }
        let manager = &self.manager;
        match level {
            LockLevel::None => Ok(()),
            LockLevel::Shared => {
                // This handle holds nothing, so any writer is another
                // connection's.
                manager.update(|s| {
                    if writer(s) >= PENDING {
                        return Err(Error::busy("a writer is finishing its commit"));
                    }
                    Ok(s + 1)
                })?;
                self.level = LockLevel::Shared;
                Ok(())
            }
            LockLevel::Reserved => {
                if self.level < LockLevel::Shared {
                    return Err(Error::new(
                        crate::codes::SQLITE_IOERR_LOCK,
                        "RESERVED requested without SHARED",
                    ));
                }
                // At Shared: a writer, if any, is another connection.
                manager.update(|s| {
                    if writer(s) != 0 {
                        return Err(Error::busy("another connection is writing"));
                    }
                    Ok(with_writer(s, RESERVED))
                })?;
                self.level = LockLevel::Reserved;
                Ok(())
            }
            LockLevel::Pending | LockLevel::Exclusive => {
                if self.level < LockLevel::Shared {
                    return Err(Error::new(
                        crate::codes::SQLITE_IOERR_LOCK,
                        "EXCLUSIVE requested without SHARED",
                    ));
                }
                let mine = self.level >= LockLevel::Reserved;
                let got = manager.update(|s| {
                    if !mine && writer(s) != 0 {
                        return Err(Error::busy("another connection is writing"));
                    }
                    // This connection counts once in the shared count;
                    // anyone else there is a reader we must wait for,
                    // holding PENDING meanwhile so no new reader can start.
                    if shared(s) > 1 || level == LockLevel::Pending {
                        Ok(with_writer(s, PENDING))
                    } else {
                        Ok(with_writer(s, EXCLUSIVE))
                    }
                })?;
                if writer(got) == EXCLUSIVE {
                    self.level = LockLevel::Exclusive;
                    return Ok(());
                }
                self.level = LockLevel::Pending;
                if level == LockLevel::Pending {
                    return Ok(());
                }
                Err(Error::busy("readers are still active"))
            }
        }
    }

    /// Lowers this connection's lock to `level` (`Shared` or `None`).
    pub fn unlock(&mut self, level: LockLevel) -> Result<()> {
        if level >= self.level {
            return Ok(());
        }
        // The writer field is this handle's own (nobody else changes it
        // while it is set), so subtracting its exact value clears it
        // whatever readers do to the count meanwhile.
        let mut release = writer_code(self.level) << WRITER_SHIFT;
        if level == LockLevel::None && self.level >= LockLevel::Shared {
            release += 1;
        }
        if release != 0 {
            self.manager.state.fetch_sub(release, Ordering::AcqRel);
        }
        self.level = level.min(LockLevel::Shared);
        Ok(())
    }

    /// Whether any connection (this one included) holds `Reserved` or
    /// stronger.
    pub fn check_reserved(&self) -> bool {
        self.manager.is_reserved()
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.unlock(LockLevel::None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::SQLITE_BUSY;

    fn busy(r: Result<()>) -> bool {
        matches!(r, Err(e) if e.code() == Some(SQLITE_BUSY))
    }

    #[test]
    fn many_shared_one_reserved() {
        let m = LockManager::new();
        let mut c: Vec<_> = (0..4).map(|_| m.connect()).collect();
        for l in &mut c {
            l.lock(LockLevel::Shared).unwrap();
        }
        assert_eq!(m.readers(), 4);
        c[0].lock(LockLevel::Reserved).unwrap();
        assert!(c[0].check_reserved() && c[1].check_reserved());
        assert!(busy(c[1].lock(LockLevel::Reserved)));
        // A new reader may still join beside RESERVED.
        let mut late = m.connect();
        late.lock(LockLevel::Shared).unwrap();
        assert_eq!(m.readers(), 5);
    }

    #[test]
    fn pending_blocks_new_shared_and_exclusive_waits_for_readers() {
        let m = LockManager::new();
        let (mut w, mut r) = (m.connect(), m.connect());
        w.lock(LockLevel::Shared).unwrap();
        r.lock(LockLevel::Shared).unwrap();
        w.lock(LockLevel::Reserved).unwrap();
        assert!(busy(w.lock(LockLevel::Exclusive)));
        assert_eq!(w.level(), LockLevel::Pending);
        let mut newcomer = m.connect();
        assert!(busy(newcomer.lock(LockLevel::Shared)));
        assert_eq!(newcomer.level(), LockLevel::None);
        // Existing reader leaves; the writer gets EXCLUSIVE on retry.
        r.unlock(LockLevel::None).unwrap();
        w.lock(LockLevel::Exclusive).unwrap();
        assert_eq!(w.level(), LockLevel::Exclusive);
        assert!(busy(newcomer.lock(LockLevel::Shared)));
        // Back to SHARED: others may read and write again.
        w.unlock(LockLevel::Shared).unwrap();
        assert!(!w.check_reserved());
        newcomer.lock(LockLevel::Shared).unwrap();
        newcomer.lock(LockLevel::Reserved).unwrap();
        w.unlock(LockLevel::None).unwrap();
        assert_eq!(m.readers(), 1);
    }

    #[test]
    fn exclusive_only_alone_and_straight_from_shared() {
        let m = LockManager::new();
        let (mut a, mut b) = (m.connect(), m.connect());
        a.lock(LockLevel::Shared).unwrap();
        a.lock(LockLevel::Exclusive).unwrap();
        assert!(busy(b.lock(LockLevel::Shared)));
        a.unlock(LockLevel::None).unwrap();
        b.lock(LockLevel::Shared).unwrap();
        assert!(busy(
            a.lock(LockLevel::Shared)
                .and_then(|_| a.lock(LockLevel::Exclusive))
        ));
    }

    #[test]
    fn reserved_blocks_second_writer_until_unlock() {
        let m = LockManager::new();
        let (mut a, mut b) = (m.connect(), m.connect());
        a.lock(LockLevel::Shared).unwrap();
        b.lock(LockLevel::Shared).unwrap();
        a.lock(LockLevel::Reserved).unwrap();
        assert!(busy(b.lock(LockLevel::Exclusive)));
        assert_eq!(b.level(), LockLevel::Shared);
        a.unlock(LockLevel::Shared).unwrap();
        b.lock(LockLevel::Reserved).unwrap();
    }

    #[test]
    fn drop_releases_everything() {
        let m = LockManager::new();
        {
            let mut a = m.connect();
            a.lock(LockLevel::Shared).unwrap();
            a.lock(LockLevel::Exclusive).unwrap();
        }
        assert_eq!(m.readers(), 0);
        assert!(!m.is_reserved());
        let mut b = m.connect();
        b.lock(LockLevel::Shared).unwrap();
        b.lock(LockLevel::Exclusive).unwrap();
    }

    #[test]
    fn lock_without_shared_is_an_error_not_a_state_change() {
        let m = LockManager::new();
        let mut a = m.connect();
        let e = a.lock(LockLevel::Reserved).unwrap_err();
        assert_eq!(e.code(), Some(crate::codes::SQLITE_IOERR_LOCK));
        assert_eq!(a.level(), LockLevel::None);
    }
}
