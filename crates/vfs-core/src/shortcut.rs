//! [`AccessShortcut`]: answers to `xAccess` that need no backend call.

use std::fmt;
use std::sync::Arc;

use crate::{AccessCheck, FileName};

/// What a closure behind an [`AccessShortcut`] is.
type Answer = dyn Fn(&FileName, AccessCheck) -> Option<bool> + Send + Sync;

/// An answer to [`Vfs::access`](crate::Vfs::access) for the names a
/// backend can decide from state that outlives it, given by
/// [`Vfs::access_shortcut`](crate::Vfs::access_shortcut).
///
/// SQLite asks `xAccess` twice per read transaction in rollback-journal
/// mode (is there a hot `<db>-journal`? a `<db>-wal`?), usually about names
/// that do not exist. A registration keeps its VFS's shortcut for the rest
/// of the process, so the `xAccess` trampoline asks it without the
/// registry's lock on the backend (two atomic read-modify-writes per call
/// saved); only when it answers `None` is the backend asked, under that
/// lock.
///
/// The closure must answer exactly what `access` would answer at that
/// moment, or `None`. It may still be asked after the VFS is unregistered
/// (a connection on `:memory:` keeps SQLite's pointer to the VFS): an
/// answer from the state it holds is right then too, since a retired
/// backend has no files of its own left.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use vfs_core::AccessShortcut;
///
/// // A backend counting its journals can say "no journal" without a lock.
/// let journals = Arc::new(AtomicUsize::new(0));
/// let counted = Arc::clone(&journals);
/// let shortcut = AccessShortcut::new(move |name, _check| {
///     (name.ends_with("-journal") && counted.load(Ordering::SeqCst) == 0).then_some(false)
/// });
/// let check = vfs_core::AccessCheck::Exists;
/// assert_eq!(shortcut.answer(vfs_core::FileName::new("/a.db-journal"), check), Some(false));
/// assert_eq!(shortcut.answer(vfs_core::FileName::new("/a.db"), check), None);
/// ```
#[derive(Clone)]
pub struct AccessShortcut(Arc<Answer>);

impl AccessShortcut {
    /// A shortcut answering with `answer`: `Some(exists)` for a name it can
    /// decide, `None` to ask the backend.
    pub fn new(
        answer: impl Fn(&FileName, AccessCheck) -> Option<bool> + Send + Sync + 'static,
    ) -> AccessShortcut {
        AccessShortcut(Arc::new(answer))
    }

    /// The answer for `name`, or `None` when the backend must be asked.
    pub fn answer(&self, name: &FileName, check: AccessCheck) -> Option<bool> {
        (self.0)(name, check)
    }
}

impl fmt::Debug for AccessShortcut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessShortcut")
    }
}
