//! Thread slots: each live thread holds a distinct small index, returned
//! when it exits and then reused, so a shard indexed by it has one writer.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;

static NEXT: AtomicUsize = AtomicUsize::new(0);
static FREE: Mutex<Vec<usize>> = Mutex::new(Vec::new());

/// Not assigned yet.
const NONE: usize = usize::MAX - 1;
/// The thread is exiting: its slot is back in `FREE`.
const EXITING: usize = usize::MAX;

/// Owns the slot: gives it back when the thread exits.
struct Owner(usize);

impl Drop for Owner {
    fn drop(&mut self) {
        // Whatever this thread records from now on goes to the shared
        // shard. The mutex orders this thread's last writes to the
        // slot's shards before the next holder's first ones.
        let _ = CURRENT.try_with(|c| c.set(EXITING));
        FREE.lock().push(self.0);
    }
}

thread_local! {
    /// This thread's slot: a plain read on the hot path.
    static CURRENT: Cell<usize> = const { Cell::new(NONE) };
    static OWNER: Cell<Option<Owner>> = const { Cell::new(None) };
}

/// This thread's slot; `usize::MAX` while the thread is exiting.
#[inline]
pub(crate) fn current() -> usize {
    let slot = CURRENT.try_with(Cell::get).unwrap_or(EXITING);
    if slot == NONE { assign() } else { slot }
}

#[cold]
fn assign() -> usize {
    // The lowest free slot: low slots have exclusive shards.
    let slot = {
        let mut free = FREE.lock();
        match (0..free.len()).min_by_key(|&i| free[i]) {
            Some(i) => free.swap_remove(i),
            None => NEXT.fetch_add(1, Ordering::Relaxed),
        }
    };
    // Registering the owner fails only while the thread exits; then the
    // slot is simply not taken.
    match OWNER.try_with(|o| o.set(Some(Owner(slot)))) {
        Ok(()) => {
            let _ = CURRENT.try_with(|c| c.set(slot));
            slot
        }
        Err(_) => {
            FREE.lock().push(slot);
            let _ = CURRENT.try_with(|c| c.set(EXITING));
            EXITING
        }
    }
}
