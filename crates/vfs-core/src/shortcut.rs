//! [`AccessShortcut`]: answers to `xAccess` that need no backend call.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

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
/// Two kinds: [`new`](AccessShortcut::new) takes any closure over the
/// name; [`absent_while_zero`](AccessShortcut::absent_while_zero) takes a
/// list of name suffixes, each with a count of the backend's files of that
/// kind, and the trampoline answers it from SQLite's raw name, before any
/// [`FileName`] is made and without an indirect call (the common case:
/// "no journal or WAL file anywhere").
///
/// The closure must answer exactly what `access` would answer at that
/// moment, or `None`; the counts must be zero only while the backend holds
/// no file of their kind. It may still be asked after the VFS is unregistered
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
pub struct AccessShortcut(Kind);

#[derive(Clone)]
enum Kind {
    Answer(Arc<Answer>),
    Counted(Arc<[CountedSuffix]>),
}

/// Names ending in `suffix` are absent while `count` is zero.
struct CountedSuffix {
    suffix: &'static [u8],
    count: Arc<AtomicUsize>,
}

impl AccessShortcut {
    /// A shortcut answering with `answer`: `Some(exists)` for a name it can
    /// decide, `None` to ask the backend.
    pub fn new(
        answer: impl Fn(&FileName, AccessCheck) -> Option<bool> + Send + Sync + 'static,
    ) -> AccessShortcut {
        AccessShortcut(Kind::Answer(Arc::new(answer)))
    }

    /// A shortcut answering "absent" (for any [`AccessCheck`]) for a name
    /// ending in one of the suffixes while that suffix's count is zero;
    /// every other name is asked of the backend. The first suffix the name
    /// ends with decides. The backend keeps each count at the number of
    /// its files whose names end in that suffix (at least: a count above
    /// the truth only sends the question to the backend).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use vfs_core::{AccessCheck, AccessShortcut, FileName};
    ///
    /// let journals = Arc::new(AtomicUsize::new(0));
    /// let shortcut = AccessShortcut::absent_while_zero([("-journal", Arc::clone(&journals))]);
    /// let journal = FileName::new("/a.db-journal");
    /// assert_eq!(shortcut.answer(journal, AccessCheck::Exists), Some(false));
    /// assert_eq!(shortcut.answer(FileName::new("/a.db"), AccessCheck::Exists), None);
    /// journals.fetch_add(1, Ordering::SeqCst);
    /// assert_eq!(shortcut.answer(journal, AccessCheck::Exists), None);
    /// ```
    pub fn absent_while_zero(
        suffixes: impl IntoIterator<Item = (&'static str, Arc<AtomicUsize>)>,
    ) -> AccessShortcut {
        let list = suffixes
            .into_iter()
            .map(|(suffix, count)| CountedSuffix {
                suffix: suffix.as_bytes(),
                count,
            })
            .collect();
        AccessShortcut(Kind::Counted(list))
    }

    /// The answer for `name`, or `None` when the backend must be asked.
    pub fn answer(&self, name: &FileName, check: AccessCheck) -> Option<bool> {
        match &self.0 {
            Kind::Answer(answer) => answer(name, check),
            Kind::Counted(_) => self.answer_raw(name.as_bytes()),
        }
    }

    /// The answer of an [`absent_while_zero`](AccessShortcut::absent_while_zero)
    /// shortcut for the raw bytes of a name; `None` for the other kind or
    /// when the backend must be asked. Never panics and calls no backend
    /// code, so the `xAccess` trampoline asks it before its panic guard.
    #[inline]
    pub(crate) fn answer_raw(&self, name: &[u8]) -> Option<bool> {
        let Kind::Counted(list) = &self.0 else {
            return None;
        };
        let counted = list.iter().find(|c| name.ends_with(c.suffix))?;
        (counted.count.load(Ordering::SeqCst) == 0).then_some(false)
    }
}

impl fmt::Debug for AccessShortcut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AccessShortcut")
    }
}
