//! File names as SQLite hands them to a VFS: bytes, losslessly.
//!
//! SQLite's names are C strings in no particular encoding. On Unix a path
//! is bytes, so `unix` opens `b"\xff.db"` (or `file:%ff.db`) like any other
//! name; a VFS that insisted on UTF-8 could not. [`FileName`] (borrowed,
//! like `Path`) and [`FileNameBuf`] (owned, like `PathBuf`) keep the bytes
//! exactly and offer the views a backend wants: [`FileName::to_str`] where
//! the name is valid UTF-8, [`FileName::as_path`] on Unix, a lossy
//! `Display`.

use std::borrow::{Borrow, Cow};
use std::fmt;
use std::ops::Deref;

/// A borrowed file name: the bytes SQLite passed (or a backend built), with
/// no terminating NUL.
///
/// Every name a [`Vfs`](crate::Vfs) method receives is a `&FileName`. It is
/// to names what `Path` is to paths: build one from anything that holds
/// bytes ([`FileName::new`] takes `&str`, `&[u8]`, `&String`, and on Unix
/// `&Path` and `&OsStr`), compare it, hash it (a `HashMap<FileNameBuf, _>`
/// answers `get(&FileName)`), and look at it as text where it is text.
///
/// ```
/// use vfs_core::{FileName, FileNameBuf};
///
/// let name = FileName::new("/data/app.db-journal");
/// assert_eq!(name.to_str(), Some("/data/app.db-journal"));
/// assert_eq!(name.strip_suffix("-journal").unwrap(), "/data/app.db");
///
/// // Not UTF-8: still a name, shown lossily, kept exactly.
/// let odd = FileName::from_bytes(b"/tmp/\xff.db");
/// assert_eq!(odd.to_str(), None);
/// assert_eq!(odd.to_string(), "/tmp/\u{fffd}.db");
/// assert_eq!(format!("{odd:?}"), r#""/tmp/\xff.db""#);
/// let wal: FileNameBuf = odd.with_suffix("-wal");
/// assert_eq!(wal.as_bytes(), b"/tmp/\xff.db-wal");
/// ```
#[repr(transparent)]
#[derive(PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileName([u8]);

impl FileName {
    /// A name over anything that holds one (`&str`, `&[u8]`, `&String`,
    /// `&FileNameBuf`, and on Unix `&Path`, `&OsStr`).
    pub fn new<S: AsRef<FileName> + ?Sized>(name: &S) -> &FileName {
        name.as_ref()
    }

    /// The name made of exactly these bytes.
    pub fn from_bytes(bytes: &[u8]) -> &FileName {
        // SAFETY: `FileName` is a `repr(transparent)` wrapper of `[u8]`, so a
        // `*const [u8]` and a `*const FileName` have the same layout and
        // slice metadata; the reference keeps the borrow's lifetime.
        unsafe { &*(bytes as *const [u8] as *const FileName) }
    }

    /// The bytes of the name.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The name as text, or `None` when it is not valid UTF-8.
    pub fn to_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok()
    }

    /// The name as text, invalid UTF-8 replaced by `U+FFFD` (for messages).
    pub fn to_string_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.0)
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the name has no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the name starts with `prefix` (compared as bytes).
    pub fn starts_with(&self, prefix: impl AsRef<[u8]>) -> bool {
        self.0.starts_with(prefix.as_ref())
    }

    /// Whether the name ends with `suffix` (compared as bytes).
    pub fn ends_with(&self, suffix: impl AsRef<[u8]>) -> bool {
        self.0.ends_with(suffix.as_ref())
    }

    /// The name without `suffix`, or `None` when it does not end with it
    /// (`app.db-wal` without `-wal` is `app.db`).
    pub fn strip_suffix(&self, suffix: impl AsRef<[u8]>) -> Option<&FileName> {
        self.0
            .strip_suffix(suffix.as_ref())
            .map(FileName::from_bytes)
    }

    /// A new name: this one followed by `suffix` (`app.db` with `-journal`
    /// is `app.db-journal`).
    pub fn with_suffix(&self, suffix: impl AsRef<[u8]>) -> FileNameBuf {
        let suffix = suffix.as_ref();
        let mut bytes = Vec::with_capacity(self.0.len() + suffix.len());
        bytes.extend_from_slice(&self.0);
        bytes.extend_from_slice(suffix);
        FileNameBuf(bytes)
    }

    /// The name as an `OsStr` (on Unix an `OsStr` is bytes, so this is
    /// exact).
    #[cfg(unix)]
    pub fn as_os_str(&self) -> &std::ffi::OsStr {
        std::os::unix::ffi::OsStrExt::from_bytes(&self.0)
    }

    /// The name as a `Path`, for a backend that stores files on disk
    /// (exact on Unix).
    #[cfg(unix)]
    pub fn as_path(&self) -> &std::path::Path {
        std::path::Path::new(self.as_os_str())
    }
}

impl fmt::Display for FileName {
    /// The name as text, invalid UTF-8 shown as `U+FFFD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{fffd}")?;
            }
        }
        Ok(())
    }
}

impl fmt::Debug for FileName {
    /// Quoted like a `str`, with bytes that are not UTF-8 as `\xNN`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for chunk in self.0.utf8_chunks() {
            write!(f, "{}", chunk.valid().escape_debug())?;
            for b in chunk.invalid() {
                write!(f, "\\x{b:02x}")?;
            }
        }
        f.write_str("\"")
    }
}

impl ToOwned for FileName {
    type Owned = FileNameBuf;
    fn to_owned(&self) -> FileNameBuf {
        FileNameBuf(self.0.to_vec())
    }
}

impl AsRef<FileName> for FileName {
    fn as_ref(&self) -> &FileName {
        self
    }
}

impl AsRef<[u8]> for FileName {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<FileName> for str {
    fn as_ref(&self) -> &FileName {
        FileName::from_bytes(self.as_bytes())
    }
}

impl AsRef<FileName> for String {
    fn as_ref(&self) -> &FileName {
        FileName::from_bytes(self.as_bytes())
    }
}

impl AsRef<FileName> for [u8] {
    fn as_ref(&self) -> &FileName {
        FileName::from_bytes(self)
    }
}

impl AsRef<FileName> for Vec<u8> {
    fn as_ref(&self) -> &FileName {
        FileName::from_bytes(self)
    }
}

#[cfg(unix)]
impl AsRef<FileName> for std::ffi::OsStr {
    fn as_ref(&self) -> &FileName {
        FileName::from_bytes(std::os::unix::ffi::OsStrExt::as_bytes(self))
    }
}

#[cfg(unix)]
impl AsRef<FileName> for std::ffi::OsString {
    fn as_ref(&self) -> &FileName {
        self.as_os_str().as_ref()
    }
}

#[cfg(unix)]
impl AsRef<FileName> for std::path::Path {
    fn as_ref(&self) -> &FileName {
        self.as_os_str().as_ref()
    }
}

#[cfg(unix)]
impl AsRef<FileName> for std::path::PathBuf {
    fn as_ref(&self) -> &FileName {
        self.as_os_str().as_ref()
    }
}

impl PartialEq<str> for FileName {
    fn eq(&self, other: &str) -> bool {
        self.0 == *other.as_bytes()
    }
}

impl PartialEq<&str> for FileName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other.as_bytes()
    }
}

impl PartialEq<FileName> for str {
    fn eq(&self, other: &FileName) -> bool {
        *self.as_bytes() == other.0
    }
}

/// An owned file name: the [`FileName`] a backend builds or keeps (a
/// resolved path, a map key, a renamed file).
///
/// ```
/// use std::collections::HashMap;
/// use vfs_core::{FileName, FileNameBuf};
///
/// let mut files: HashMap<FileNameBuf, u64> = HashMap::new();
/// files.insert(FileNameBuf::from("/a.db"), 4096);
/// files.insert(FileNameBuf::from(b"/\xff.db".to_vec()), 0);
/// assert_eq!(files.get(FileName::new("/a.db")), Some(&4096));
/// assert!(files.contains_key(FileName::from_bytes(b"/\xff.db")));
/// ```
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileNameBuf(Vec<u8>);

impl FileNameBuf {
    /// The borrowed form.
    pub fn as_file_name(&self) -> &FileName {
        FileName::from_bytes(&self.0)
    }

    /// The bytes, taken out.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// Appends `bytes` to the name.
    pub fn push_bytes(&mut self, bytes: impl AsRef<[u8]>) {
        self.0.extend_from_slice(bytes.as_ref());
    }
}

impl Deref for FileNameBuf {
    type Target = FileName;
    fn deref(&self) -> &FileName {
        self.as_file_name()
    }
}

impl Borrow<FileName> for FileNameBuf {
    fn borrow(&self) -> &FileName {
        self.as_file_name()
    }
}

impl AsRef<FileName> for FileNameBuf {
    fn as_ref(&self) -> &FileName {
        self.as_file_name()
    }
}

impl AsRef<[u8]> for FileNameBuf {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<&FileName> for FileNameBuf {
    fn from(name: &FileName) -> Self {
        name.to_owned()
    }
}

impl From<&str> for FileNameBuf {
    fn from(name: &str) -> Self {
        FileNameBuf(name.as_bytes().to_vec())
    }
}

impl From<String> for FileNameBuf {
    fn from(name: String) -> Self {
        FileNameBuf(name.into_bytes())
    }
}

impl From<Vec<u8>> for FileNameBuf {
    fn from(bytes: Vec<u8>) -> Self {
        FileNameBuf(bytes)
    }
}

#[cfg(unix)]
impl From<std::ffi::OsString> for FileNameBuf {
    fn from(name: std::ffi::OsString) -> Self {
        FileNameBuf(std::os::unix::ffi::OsStringExt::into_vec(name))
    }
}

#[cfg(unix)]
impl From<std::path::PathBuf> for FileNameBuf {
    fn from(path: std::path::PathBuf) -> Self {
        FileNameBuf::from(path.into_os_string())
    }
}

impl fmt::Display for FileNameBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_file_name(), f)
    }
}

impl fmt::Debug for FileNameBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_file_name(), f)
    }
}

impl PartialEq<str> for FileNameBuf {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for FileNameBuf {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<FileName> for FileNameBuf {
    fn eq(&self, other: &FileName) -> bool {
        self.0 == other.0
    }
}

impl PartialEq<&FileName> for FileNameBuf {
    fn eq(&self, other: &&FileName) -> bool {
        self.0 == other.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::hash::{BuildHasher, RandomState};

    use super::*;

    #[test]
    fn borrowed_and_owned_hash_and_compare_alike() {
        let s = RandomState::new();
        let owned = FileNameBuf::from(b"/x\xfe.db".to_vec());
        let borrowed = FileName::from_bytes(b"/x\xfe.db");
        assert_eq!(s.hash_one(&owned), s.hash_one(borrowed));
        let mut map = HashMap::new();
        map.insert(owned.clone(), 1);
        assert_eq!(map.get(borrowed), Some(&1));
        assert_eq!(owned, borrowed);
    }

    #[test]
    fn views_and_formatting() {
        let n = FileName::new("a\"b\n");
        assert_eq!(format!("{n:?}"), r#""a\"b\n""#);
        assert_eq!(n.to_string(), "a\"b\n");
        let bad = FileName::from_bytes(b"\xff\xfeok\xc3");
        assert_eq!(bad.to_string(), "\u{fffd}\u{fffd}ok\u{fffd}");
        assert_eq!(format!("{bad:?}"), r#""\xff\xfeok\xc3""#);
        assert_eq!(bad.to_string_lossy(), "\u{fffd}\u{fffd}ok\u{fffd}");
        assert!(bad.starts_with(b"\xff") && bad.ends_with([0xc3]));
        assert_eq!(bad.strip_suffix("ok"), None);
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            assert_eq!(bad.as_path().as_os_str().as_bytes(), bad.as_bytes());
            let back: &FileName = bad.as_path().as_ref();
            assert_eq!(back, bad);
        }
    }
}
