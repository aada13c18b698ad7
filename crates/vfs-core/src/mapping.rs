//! Memory-mapped reads (`xFetch`/`xUnfetch`): file bytes a backend lends
//! SQLite to read in place.
//!
//! SQLite asks for one database page at a time (`PRAGMA mmap_size` above
//! zero turns it on); the pager then reads the page through the pointer
//! until it gives it back with `xUnfetch`, which may be much later (the page
//! stays referenced while a cursor sits on it). A [`Mapping`] is what keeps
//! those bytes valid and unchanged for that long:
//!
//! * a Rust backend lends a page it keeps behind an `Arc<[u8]>`
//!   ([`Mapping::lend`]): while SQLite holds the mapping the core holds a
//!   clone of the `Arc`, so the bytes can be neither freed nor written (a
//!   writer gets `None` from `Arc::get_mut` and writes a copy instead);
//! * the native base lends a page of the platform VFS's own `mmap` of the
//!   file, which stays mapped until that VFS gets the pointer back.
//!
//! Nothing else can make one, so a backend in safe Rust cannot hand SQLite
//! a dangling or changing pointer.

use std::ffi::c_void;
use std::fmt;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::native::NativeMapped;

/// Bytes of a file lent to SQLite for a memory-mapped read, from
/// [`File::fetch`](crate::File::fetch) until SQLite hands them back through
/// [`File::unfetch`](crate::File::unfetch).
///
/// A backend makes one with [`Mapping::lend`] over a page it keeps in an
/// `Arc<[u8]>`, or passes on the one its base returned. Dropping a
/// mapping releases it (the platform VFS's mappings are released by giving
/// them back to the file that lent them, through `unfetch`).
///
/// ```
/// use std::sync::Arc;
/// use vfs_core::Mapping;
///
/// // A 4 KiB page followed by the room SQLite may overread.
/// let mut bytes = vec![7u8; 4096];
/// bytes.resize(4096 + Mapping::OVERREAD, 0);
/// let page: Arc<[u8]> = bytes.into();
/// let lent = Mapping::lend(&page, 1024, 1024).expect("inside the page, with room after");
/// assert_eq!(lent.len(), 1024);
/// assert_eq!(lent.shared_bytes(), Some(&[7u8; 1024][..]));
/// // While it is lent, the page cannot be changed in place.
/// let mut page = page;
/// assert!(Arc::get_mut(&mut page).is_none());
/// drop(lent);
/// assert!(Arc::get_mut(&mut page).is_some());
///
/// // No room after the range: not lendable.
/// let tight: Arc<[u8]> = vec![0u8; 4096].into();
/// assert!(Mapping::lend(&tight, 0, 4096).is_none());
/// assert!(Mapping::lend(&tight, 0, 4096 - Mapping::OVERREAD).is_some());
/// ```
pub struct Mapping {
    /// The first lent byte; `len` bytes from it are readable, and
    /// [`Mapping::OVERREAD`] more (also readable for a shared page; mapped
    /// for the platform VFS's).
    ptr: NonNull<u8>,
    len: usize,
    keep: Keep,
}

/// What keeps a mapping's bytes valid.
enum Keep {
    /// A Rust backend's page, shared (so immutable) while this clone lives,
    /// and where the lent bytes start in it.
    Shared(Arc<[u8]>, usize),
    /// A page of the platform VFS's mapping of a native file.
    Native(NativeMapped),
}

// SAFETY: the pointer is never dereferenced by Rust; it is only handed to
// SQLite (which reads through it on whatever thread uses the file) and
// compared. What keeps it valid is `Send`: `Arc<[u8]>` is, and
// `NativeMapped` holds the native file's `Arc`, whose target is `Send +
// Sync` (see native.rs).
unsafe impl Send for Mapping {}

impl Mapping {
    /// How many bytes after a lent range must be addressable: SQLite may
    /// read a few bytes past a page of a corrupt database, and its own
    /// `unix` and `win32` VFSes keep 256 bytes of mapping after every page
    /// they lend.
    pub const OVERREAD: usize = 256;

    /// Lends `len` bytes of `page` from `start`: `None` unless they, and
    /// [`OVERREAD`](Mapping::OVERREAD) more bytes after them, lie within
    /// the page (keep pages that many bytes longer than their content, zero
    /// filled). The mapping holds a clone of the `Arc` until SQLite gives it
    /// back; meanwhile the page cannot be changed in place (`Arc::get_mut`
    /// answers `None`), so write a copy (`Arc::make_mut`) and SQLite keeps
    /// reading the bytes it was lent.
    pub fn lend(page: &Arc<[u8]>, start: usize, len: usize) -> Option<Mapping> {
        let end = start.checked_add(len)?;
        if len == 0 || end.checked_add(Mapping::OVERREAD)? > page.len() {
            return None;
        }
        let ptr = NonNull::new(page.as_ptr().wrapping_add(start).cast_mut())?;
        Some(Mapping {
            ptr,
            len,
            keep: Keep::Shared(Arc::clone(page), start),
        })
    }

    /// A page of the platform VFS's mapping (see [`NativeMapped`]).
    pub(crate) fn native(ptr: NonNull<u8>, len: usize, keep: NativeMapped) -> Mapping {
        Mapping {
            ptr,
            len,
            keep: Keep::Native(keep),
        }
    }

    /// The bytes SQLite may read through the mapping.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always `false`: a mapping lends at least one byte.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The lent bytes, when a Rust backend lent them ([`Mapping::lend`]):
    /// they cannot change while lent. `None` for a page of the platform
    /// VFS's mapping, whose bytes another process may write at any time (a
    /// Rust reference to them could not promise they stay as read).
    pub fn shared_bytes(&self) -> Option<&[u8]> {
        match &self.keep {
            Keep::Shared(page, start) => Some(&page[*start..*start + self.len]),
            Keep::Native(_) => None,
        }
    }

    /// The pointer SQLite reads through.
    pub(crate) fn as_ptr(&self) -> *mut c_void {
        self.ptr.as_ptr().cast()
    }

    /// The native file's hold, when the platform VFS lent the bytes.
    pub(crate) fn native_keep(&self) -> Option<&NativeMapped> {
        match &self.keep {
            Keep::Native(n) => Some(n),
            Keep::Shared(..) => None,
        }
    }
}

impl fmt::Debug for Mapping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mapping")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .field(
                "from",
                &match self.keep {
                    Keep::Shared(..) => "shared page",
                    Keep::Native(_) => "platform VFS",
                },
            )
            .finish()
    }
}
