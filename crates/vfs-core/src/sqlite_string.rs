//! Strings in memory that SQLite frees (`sqlite3_free`): what a VFS hands
//! back through an out-pointer (`SQLITE_FCNTL_VFSNAME`, a pragma's result or
//! error, an auto extension's error) or takes over from a layer below.

use std::ffi::{CStr, c_char, c_void};
use std::ptr::{self, NonNull};

use libsqlite3_sys as ffi;

/// A NUL-terminated string allocated by SQLite's allocator, owned: freed
/// with `sqlite3_free` on drop unless handed over with
/// [`into_raw`](Self::into_raw) or [`store`](Self::store).
pub(crate) struct SqliteString(NonNull<c_char>);

impl SqliteString {
    /// A copy of `text` in memory from `sqlite3_malloc64` (NUL bytes become
    /// spaces: C strings end at the first one); `None` when SQLite is out of
    /// memory. SQLite must be usable (linked in, or the host's API table
    /// bound), as it is inside every callback.
    pub(crate) fn new(text: &str) -> Option<SqliteString> {
        // SAFETY: sqlite3_malloc64 is a plain allocation, callable whenever
        // SQLite is usable (this function's precondition).
        let alloc = |n: usize| unsafe { ffi::sqlite3_malloc64(n as u64) };
        // SAFETY: `alloc(n)` answers null or n writable bytes, which is all
        // copy_with asks.
        let p = unsafe { copy_with(alloc, text.as_bytes()) };
        NonNull::new(p).map(SqliteString)
    }

    /// Takes ownership of `p`; `None` for a null pointer.
    ///
    /// # Safety
    /// `p` is null or a NUL-terminated string from SQLite's allocator that
    /// nobody else frees or uses afterwards.
    pub(crate) unsafe fn from_raw(p: *mut c_char) -> Option<SqliteString> {
        NonNull::new(p).map(SqliteString)
    }

    /// The text, with invalid UTF-8 replaced.
    pub(crate) fn to_string_lossy(&self) -> String {
        // SAFETY: the pointer is a NUL-terminated string we own (type
        // invariant), alive until drop.
        unsafe { CStr::from_ptr(self.0.as_ptr()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Hands the string over (to SQLite, which frees it).
    pub(crate) fn into_raw(self) -> *mut c_char {
        let p = self.0.as_ptr();
        std::mem::forget(self);
        p
    }

    /// Puts `value` (null for `None`) into the out-slot `slot`, freeing the
    /// string it held, if any.
    ///
    /// # Safety
    /// `slot` is valid for reads and writes and holds null or a string from
    /// SQLite's allocator that is ours to free (SQLite's out-slots start
    /// null; a non-null value was put there by a layer below, the same way).
    pub(crate) unsafe fn store(slot: *mut *mut c_char, value: Option<SqliteString>) {
        // SAFETY: slot is valid for reads (contract).
        let old = unsafe { *slot };
        // SAFETY: the slot's old value is null or ours to free (contract),
        // and is replaced below, so nobody uses it afterwards.
        drop(unsafe { SqliteString::from_raw(old) });
        let new = value.map_or(ptr::null_mut(), SqliteString::into_raw);
        // SAFETY: slot is valid for writes (contract).
        unsafe { *slot = new };
    }
}

impl Drop for SqliteString {
    fn drop(&mut self) {
        // SAFETY: the pointer came from SQLite's allocator and is owned
        // (type invariant); it is freed exactly once, here.
        unsafe { ffi::sqlite3_free(self.0.as_ptr().cast()) };
    }
}

/// Copies `bytes` into `len + 1` bytes from `alloc` (given that size),
/// NUL bytes replaced by spaces, NUL-terminated. Null when `alloc` fails.
///
/// # Safety
/// `alloc(n)` returns null or `n` writable bytes.
pub(crate) unsafe fn copy_with(
    alloc: impl FnOnce(usize) -> *mut c_void,
    bytes: &[u8],
) -> *mut c_char {
    let p = alloc(bytes.len() + 1).cast::<u8>();
    if p.is_null() {
        return ptr::null_mut();
    }
    // SAFETY: p holds bytes.len() + 1 writable bytes (contract), a fresh
    // allocation that cannot overlap `bytes`.
    let out = unsafe { std::slice::from_raw_parts_mut(p, bytes.len() + 1) };
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = if *b == 0 { b' ' } else { *b };
    }
    out[bytes.len()] = 0;
    p.cast()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_replace_nul_and_round_trip() {
        let s = SqliteString::new("vfs\0name").expect("memory");
        assert_eq!(s.to_string_lossy(), "vfs name");
        let mut slot: *mut c_char = ptr::null_mut();
        // SAFETY: a valid, null slot.
        unsafe { SqliteString::store(&mut slot, Some(s)) };
        // SAFETY: the slot now owns a string from SQLite's allocator;
        // replacing it frees the old one, taking it back frees the new one.
        unsafe { SqliteString::store(&mut slot, SqliteString::new("second")) };
        // SAFETY: the slot owns the string stored just above; taken once.
        let back = unsafe { SqliteString::from_raw(slot) }.expect("stored");
        assert_eq!(back.to_string_lossy(), "second");
    }
}
