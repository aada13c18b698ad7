//! The in-process lock manager: SQLite's five lock levels for files that many
//! connections of one process share.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::{Error, LockLevel, Result};

/// The lock state of one shared file. Keep one per file (in an `Arc`) and
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
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Connections holding `Shared` or stronger.
    shared: u32,
    /// The connection holding `Reserved`, `Pending` or `Exclusive`, if any.
    writer: Option<(u64, LockLevel)>,
}

/// One connection's handle on a [`LockManager`]. Dropping it releases every
/// lock it holds.
#[derive(Debug)]
pub struct FileLock {
    manager: Arc<LockManager>,
    id: u64,
    level: LockLevel,
}

static NEXT_LOCK_ID: AtomicU64 = AtomicU64::new(1);

impl LockManager {
    /// A new, unlocked file.
    pub fn new() -> Arc<LockManager> {
        Arc::new(LockManager::default())
    }

    /// A handle for one more connection, holding no lock.
    pub fn connect(self: &Arc<Self>) -> FileLock {
        FileLock {
            manager: Arc::clone(self),
            id: NEXT_LOCK_ID.fetch_add(1, Ordering::Relaxed),
            level: LockLevel::None,
        }
    }

    /// Whether any connection holds `Reserved` or stronger.
    pub fn is_reserved(&self) -> bool {
        self.state.lock().writer.is_some()
    }

    /// How many connections hold at least `Shared`.
    pub fn readers(&self) -> u32 {
        self.state.lock().shared
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
        let mut st = self.manager.state.lock();
        match level {
            LockLevel::None => Ok(()),
            LockLevel::Shared => {
                if matches!(st.writer, Some((owner, l)) if owner != self.id && l >= LockLevel::Pending)
                {
                    return Err(Error::busy("a writer is finishing its commit"));
                }
                st.shared += 1;
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
                if st.writer.is_some() {
                    return Err(Error::busy("another connection is writing"));
                }
                st.writer = Some((self.id, LockLevel::Reserved));
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
                match st.writer {
                    Some((owner, _)) if owner != self.id => {
                        return Err(Error::busy("another connection is writing"));
                    }
                    _ => {}
                }
                // This connection counts once in `shared`; anyone else there
                // is a reader we must wait for, holding PENDING meanwhile so
                // no new reader can start.
                if st.shared > 1 || level == LockLevel::Pending {
                    st.writer = Some((self.id, LockLevel::Pending));
                    self.level = LockLevel::Pending;
                    if level == LockLevel::Pending {
                        return Ok(());
                    }
                    return Err(Error::busy("readers are still active"));
                }
                st.writer = Some((self.id, LockLevel::Exclusive));
                self.level = LockLevel::Exclusive;
                Ok(())
            }
        }
    }

    /// Lowers this connection's lock to `level` (`Shared` or `None`).
    pub fn unlock(&mut self, level: LockLevel) -> Result<()> {
        if level >= self.level {
            return Ok(());
        }
        let mut st = self.manager.state.lock();
        if self.level > LockLevel::Shared
            && matches!(st.writer, Some((owner, _)) if owner == self.id)
        {
            st.writer = None;
        }
        if level == LockLevel::None && self.level >= LockLevel::Shared {
            st.shared -= 1;
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
