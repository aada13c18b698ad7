//! Finding secrets in freed heap memory, for tests that prove a layer
//! zeroizes what it held (a key, a decrypted page) before giving the
//! memory back. Linux only (it reads `/proc/self/mem`).
//!
//! Install [`ScanningAllocator`] as the test binary's global allocator,
//! then run the code under test inside [`scan_freed`]: every block the
//! calling thread frees meanwhile (or leaves by reallocating) is held back
//! instead of freed, and searched for the given byte strings once the code
//! returns. Only the calling thread is affected, so tests running beside
//! it do not interfere. Blocks the thread allocates meanwhile start zeroed:
//! what one holds when freed was written during its life, never left in
//! its spare capacity by an earlier owner of the memory (SQLite's page
//! cache, for one, frees plaintext pages without zeroing them).
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOC: vfs_core::alloc_scan::ScanningAllocator =
//!     vfs_core::alloc_scan::ScanningAllocator;
//!
//! let ((), found) = vfs_core::alloc_scan::scan_freed(&[b"secret"], || {
//!     drop(b"a secret left behind".to_vec());
//! })
//! .unwrap();
//! assert_eq!(found, [1]);
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Mutex;

/// Blocks one [`scan_freed`] call can hold back.
pub const CAPACITY: usize = 1 << 16;

/// The system allocator; frees of a thread inside [`scan_freed`] are held
/// back for inspection.
#[derive(Clone, Copy, Debug, Default)]
pub struct ScanningAllocator;

thread_local! {
    static SCANNING: Cell<bool> = const { Cell::new(false) };
}

/// Blocks held back: address, size, alignment. One table for the process
/// (a `Mutex` never allocates); one thread scans at a time.
struct Held {
    len: usize,
    overflow: bool,
    blocks: [(usize, usize, usize); CAPACITY],
}

static HELD: Mutex<Held> = Mutex::new(Held {
    len: 0,
    overflow: false,
    blocks: [(0, 0, 0); CAPACITY],
});
static ONE_SCAN: Mutex<()> = Mutex::new(());

fn scanning() -> bool {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    SCANNING.try_with(Cell::get).unwrap_or(false)
}

/// Keeps `ptr` (allocated with `layout`) for inspection; false when the
/// table is full (the caller frees it as usual).
fn hold(ptr: *mut u8, layout: Layout) -> bool {
    let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
    if held.len == CAPACITY {
        held.overflow = true;
        return false;
    }
    let n = held.len;
    held.blocks[n] = (ptr as usize, layout.size(), layout.align());
    held.len += 1;
    true
}

// SAFETY: allocation is the system allocator's. A block held back instead
// of freed stays allocated (nothing else owns it any more, so nothing
// writes it) until `scan_freed` frees it with the layout it was allocated
// with. `realloc` of a scanning thread allocates the new block (zeroed)
// from the system allocator, copies the `min(old, new)` bytes the caller may read
// (an untyped copy between two live, distinct blocks) and holds the old
// block back. The thread-local flag is const-initialised and never
// allocates; the table lives in a static behind a `Mutex`, which does not
// allocate either.
unsafe impl GlobalAlloc for ScanningAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if scanning() {
            // SAFETY: the caller upholds GlobalAlloc::alloc's contract,
            // which is alloc_zeroed's.
            return unsafe { System.alloc_zeroed(layout) };
        }
        // SAFETY: the caller upholds GlobalAlloc::alloc's contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds GlobalAlloc::alloc_zeroed's contract.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if scanning() && hold(ptr, layout) {
            return;
        }
        // SAFETY: the caller upholds GlobalAlloc::dealloc's contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !scanning() {
            // SAFETY: the caller upholds GlobalAlloc::realloc's contract.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: the caller guarantees `new_size` with `layout.align()`
        // forms a valid layout (GlobalAlloc::realloc's contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: `new_layout` has a non-zero size (realloc's contract).
        let new = unsafe { System.alloc_zeroed(new_layout) };
        if new.is_null() {
            return new;
        }
        // SAFETY: `ptr` is live for `layout.size()` bytes, `new` for
        // `new_size`; they are distinct allocations.
        unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size)) };
        if !hold(ptr, layout) {
            // SAFETY: `ptr` was allocated with `layout` and is given up.
            unsafe { System.dealloc(ptr, layout) };
        }
        new
    }
}

/// Runs `f` and returns its result with, for each of `patterns`, how many
/// blocks this thread freed (or reallocated away from) meanwhile still
/// held it. Finds nothing unless [`ScanningAllocator`] is the global
/// allocator. `Err` when more than [`CAPACITY`] blocks were freed (some
/// went unscanned) or `/proc/self/mem` cannot be read.
pub fn scan_freed<R>(patterns: &[&[u8]], f: impl FnOnce() -> R) -> std::io::Result<(R, Vec<u64>)> {
    use std::os::unix::fs::FileExt;
    let _one = ONE_SCAN.lock().unwrap_or_else(|e| e.into_inner());
    let mem = std::fs::File::open("/proc/self/mem")?;
    let was = SCANNING.with(|c| c.replace(true));
    let r = f();
    SCANNING.with(|c| c.set(was));
    let (blocks, overflow) = {
        let mut held = HELD.lock().unwrap_or_else(|e| e.into_inner());
        let blocks = held.blocks[..held.len].to_vec();
        let overflow = held.overflow;
        held.len = 0;
        held.overflow = false;
        (blocks, overflow)
    };
    let mut found = vec![0u64; patterns.len()];
    let mut buf = Vec::new();
    let mut result = Ok(());
    for &(addr, size, align) in &blocks {
        buf.resize(size, 0);
        // Reading our own memory through the kernel: bytes as they are,
        // whatever Rust type last lived there.
        match mem.read_exact_at(&mut buf, addr as u64) {
            Ok(()) => {
                for (n, p) in found.iter_mut().zip(patterns) {
                    if !p.is_empty() && buf.windows(p.len()).any(|w| w == *p) {
                        *n += 1;
                    }
                }
            }
            Err(e) => result = Err(e),
        }
        // SAFETY: size and align were a valid layout's (recorded from
        // one by `hold`).
        let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
        // SAFETY: the block was allocated by the system allocator with
        // this layout, held back instead of freed, and is freed exactly
        // once here.
        unsafe { System.dealloc(addr as *mut u8, layout) };
    }
    result?;
    if overflow {
        return Err(std::io::Error::other(format!(
            "more than {CAPACITY} blocks freed while scanning: some were not scanned"
        )));
    }
    Ok((r, found))
}
