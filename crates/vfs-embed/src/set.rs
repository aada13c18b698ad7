//! A set of named files: one VFS, several databases.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::Source;

/// The name a single [`Source`] gets when it is registered on its own
/// (`Embed::register(bytes)`): open it as `handle.uri("main.db")`.
pub const DEFAULT_NAME: &str = "main.db";

/// One entry: a readable source, or the reason it cannot be served (a zip
/// entry with an unsupported compression method, for example). The reason
/// is reported when SQLite tries to open it.
#[derive(Clone)]
pub(crate) enum Entry {
    Ready(Source),
    Unavailable(Arc<str>),
}

/// Named files served by one embedded VFS: `file:<name>?vfs=<vfs>` opens
/// the file `name`. Several databases of one set can be opened side by
/// side or `ATTACH`ed to each other.
///
/// Names are matched exactly, except that leading `/` and `./` are ignored
/// (`file:/a.db` and `file:a.db` open the same entry).
///
/// ```
/// use vfs_embed::{FileSet, Source};
///
/// static USERS: &[u8] = &[]; // include_bytes!("users.db") in real code
/// let set = FileSet::new()
///     .with("users.db", USERS)
///     .with("geo/cities.db", vec![0u8; 0]);
/// assert_eq!(set.names().collect::<Vec<_>>(), ["geo/cities.db", "users.db"]);
/// assert!(set.contains("/users.db"));
/// ```
#[derive(Clone, Default)]
pub struct FileSet {
    files: BTreeMap<String, Entry>,
}

/// The lookup key of a name: without leading `/` and `./`.
pub(crate) fn normalize(name: &str) -> &str {
    let mut n = name;
    loop {
        if let Some(rest) = n.strip_prefix('/') {
            n = rest;
        } else if let Some(rest) = n.strip_prefix("./") {
            n = rest;
        } else {
            return n;
        }
    }
}

impl FileSet {
    /// An empty set.
    pub fn new() -> FileSet {
        FileSet::default()
    }

    /// This set with `source` added as `name` (replacing any file of that
    /// name).
    pub fn with(mut self, name: impl AsRef<str>, source: impl Into<Source>) -> FileSet {
        self.insert(name, source);
        self
    }

    /// Adds `source` as `name`; returns the source it replaces, if any.
    pub fn insert(&mut self, name: impl AsRef<str>, source: impl Into<Source>) -> Option<Source> {
        let key = normalize(name.as_ref()).to_owned();
        match self.files.insert(key, Entry::Ready(source.into())) {
            Some(Entry::Ready(old)) => Some(old),
            _ => None,
        }
    }

    /// Records `name` as present but unreadable, with the reason given when
    /// it is opened.
    #[cfg_attr(not(feature = "zip"), allow(dead_code))]
    pub(crate) fn insert_unavailable(&mut self, name: &str, reason: String) {
        self.files.insert(
            normalize(name).to_owned(),
            Entry::Unavailable(reason.into()),
        );
    }

    /// Removes `name`; returns its source, if it had one.
    pub fn remove(&mut self, name: &str) -> Option<Source> {
        match self.files.remove(normalize(name)) {
            Some(Entry::Ready(src)) => Some(src),
            _ => None,
        }
    }

    /// The source named `name`, if it is present and readable.
    pub fn get(&self, name: &str) -> Option<&Source> {
        match self.files.get(normalize(name)) {
            Some(Entry::Ready(src)) => Some(src),
            _ => None,
        }
    }

    pub(crate) fn entry(&self, name: &str) -> Option<&Entry> {
        self.files.get(normalize(name))
    }

    /// Whether `name` is in the set (readable or not).
    pub fn contains(&self, name: &str) -> bool {
        self.files.contains_key(normalize(name))
    }

    /// The names in the set, in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    /// How many files the set holds.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the set holds no file.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// A short, readable list of the names (for error messages).
    pub(crate) fn describe(&self) -> String {
        const SHOWN: usize = 8;
        if self.files.is_empty() {
            return "it serves no file".to_owned();
        }
        let mut list: Vec<String> = self.names().take(SHOWN).map(|n| format!("{n:?}")).collect();
        if self.files.len() > SHOWN {
            list.push(format!("and {} more", self.files.len() - SHOWN));
        }
        format!("it serves {}", list.join(", "))
    }
}

impl fmt::Debug for FileSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut m = f.debug_map();
        for (name, entry) in &self.files {
            match entry {
                Entry::Ready(src) => m.entry(name, &src.len()),
                Entry::Unavailable(why) => m.entry(name, why),
            };
        }
        m.finish()
    }
}

/// A single source becomes a set of one file named [`DEFAULT_NAME`].
impl From<Source> for FileSet {
    fn from(source: Source) -> FileSet {
        FileSet::new().with(DEFAULT_NAME, source)
    }
}

impl From<&'static [u8]> for FileSet {
    fn from(bytes: &'static [u8]) -> FileSet {
        FileSet::from(Source::from(bytes))
    }
}

impl<const N: usize> From<&'static [u8; N]> for FileSet {
    fn from(bytes: &'static [u8; N]) -> FileSet {
        FileSet::from(Source::from(bytes))
    }
}

impl From<Vec<u8>> for FileSet {
    fn from(bytes: Vec<u8>) -> FileSet {
        FileSet::from(Source::from(bytes))
    }
}

impl From<Arc<[u8]>> for FileSet {
    fn from(bytes: Arc<[u8]>) -> FileSet {
        FileSet::from(Source::from(bytes))
    }
}

impl<N: AsRef<str>, S: Into<Source>> FromIterator<(N, S)> for FileSet {
    fn from_iter<I: IntoIterator<Item = (N, S)>>(iter: I) -> FileSet {
        let mut set = FileSet::new();
        for (name, src) in iter {
            set.insert(name, src);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalized() {
        assert_eq!(normalize("/./a.db"), "a.db");
        assert_eq!(normalize("//x/y.db"), "x/y.db");
        assert_eq!(normalize("a/./b"), "a/./b");
        let set: FileSet = [("./a.db", vec![1u8]), ("/b.db", vec![2u8, 3])]
            .into_iter()
            .collect();
        assert_eq!(set.names().collect::<Vec<_>>(), ["a.db", "b.db"]);
        assert_eq!(set.get("a.db").map(Source::len), Some(1));
        assert_eq!(set.get("/b.db").map(Source::len), Some(2));
        assert!(set.get("c.db").is_none());
    }

    #[test]
    fn describe_lists_a_few_names() {
        let set: FileSet = (0..10).map(|i| (format!("f{i}"), vec![0u8])).collect();
        let d = set.describe();
        assert!(d.contains("\"f0\"") && d.contains("and 2 more"), "{d}");
        assert_eq!(FileSet::new().describe(), "it serves no file");
    }
}
