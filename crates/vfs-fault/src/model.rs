//! The durability model: per-path records of what is durable and how to get
//! back to it (pre-images of every change since the last sync).

use std::collections::HashMap;

use vfs_core::{File, FileKind, FileName, FileNameBuf, Result};

/// One change to a file since its last sync, with what it takes to undo it.
#[derive(Clone, Debug)]
pub(crate) enum Undo {
    /// A write at `offset`: the file's size before it, and the bytes it
    /// overwrote (the part of the written range below `size_before`).
    Write {
        offset: u64,
        size_before: u64,
        old: Vec<u8>,
    },
    /// A size change (truncate, or growth through a size hint): the size
    /// before, the size after, and the bytes cut off when it shrank.
    Resize {
        size_before: u64,
        size_after: u64,
        removed: Vec<u8>,
    },
}

impl Undo {
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Undo::Write { old, .. } => old.len(),
            Undo::Resize { removed, .. } => removed.len(),
        }
    }
}

/// What the durable directory holds under a path.
#[derive(Clone, Debug)]
pub(crate) enum Durable {
    /// No entry: after a power cut the path does not exist.
    Absent,
    /// The entry is the live file; its durable content is the live content
    /// with the undo log rolled back.
    Current,
    /// The entry is an older file that was deleted (or replaced) without a
    /// directory sync; these are its durable bytes.
    Old(Vec<u8>),
}

/// The live file at a path (the one a new open would see).
#[derive(Clone, Debug)]
pub(crate) struct Live {
    /// Distinguishes this incarnation from earlier ones at the same path.
    pub(crate) id: u64,
    /// Changes since the last sync, oldest first.
    pub(crate) undo: Vec<Undo>,
}

/// Everything known about one path.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) kind: FileKind,
    pub(crate) durable: Durable,
    pub(crate) live: Option<Live>,
}

impl Node {
    /// Whether a power cut now would leave this path different from what is
    /// live.
    pub(crate) fn has_unsynced(&self) -> bool {
        match (&self.live, &self.durable) {
            (Some(l), Durable::Current) => !l.undo.is_empty(),
            (None, Durable::Absent) => false,
            _ => true,
        }
    }
}

/// The directory part of a path (everything before the last `/`).
pub(crate) fn dir_of(path: &FileName) -> &FileName {
    let bytes = path.as_bytes();
    match bytes.iter().rposition(|&b| b == b'/') {
        Some(i) => FileName::from_bytes(&bytes[..i]),
        None => FileName::new(""),
    }
}

/// A directory sync: every entry of `dir` becomes what is live.
pub(crate) fn dir_sync(nodes: &mut HashMap<FileNameBuf, Node>, dir: &FileName) {
    for (path, node) in nodes.iter_mut() {
        if dir_of(path) == dir {
            node.durable = if node.live.is_some() {
                Durable::Current
            } else {
                Durable::Absent
            };
        }
    }
}

/// Something an undo log can be rolled back on: a file, or bytes in memory.
pub(crate) trait Medium {
    fn size(&mut self) -> Result<u64>;
    fn set_len(&mut self, n: u64) -> Result<()>;
    fn put(&mut self, offset: u64, bytes: &[u8]) -> Result<()>;
}

impl Medium for Vec<u8> {
    fn size(&mut self) -> Result<u64> {
        Ok(Vec::len(self) as u64)
    }
    fn set_len(&mut self, n: u64) -> Result<()> {
        self.resize(n as usize, 0);
        Ok(())
    }
    fn put(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        let end = offset as usize + bytes.len();
        if Vec::len(self) < end {
            self.resize(end, 0);
        }
        self[offset as usize..end].copy_from_slice(bytes);
        Ok(())
    }
}

/// A base file as a [`Medium`].
pub(crate) struct OnFile<'a, F: File>(pub(crate) &'a mut F);

impl<F: File> Medium for OnFile<'_, F> {
    fn size(&mut self) -> Result<u64> {
        self.0.size()
    }
    fn set_len(&mut self, n: u64) -> Result<()> {
        self.0.truncate(n)
    }
    fn put(&mut self, offset: u64, bytes: &[u8]) -> Result<()> {
        self.0.write_at(bytes, offset)
    }
}

/// Rolls `undo` back on `m`, newest change first. Each step restores the
/// exact state before its change, so the whole log restores the state at
/// the last sync.
pub(crate) fn roll_back(m: &mut impl Medium, undo: &[Undo]) -> Result<()> {
    for u in undo.iter().rev() {
        match u {
            Undo::Write {
                offset,
                size_before,
                old,
            } => {
                if m.size()? > *size_before {
                    m.set_len(*size_before)?;
                }
                if !old.is_empty() {
                    m.put(*offset, old)?;
                }
            }
            Undo::Resize {
                size_before,
                size_after,
                removed,
            } => {
                if size_after < size_before {
                    if !removed.is_empty() {
                        m.put(*size_after, removed)?;
                    }
                    if m.size()? < *size_before {
                        m.set_len(*size_before)?;
                    }
                } else {
                    m.set_len(*size_before)?;
                }
            }
        }
    }
    Ok(())
}

/// Reads `len` bytes at `offset` (fewer if the file ends first).
pub(crate) fn read_range<F: File>(f: &mut F, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let n = f.read_at(&mut buf[done..], offset + done as u64)?;
        if n == 0 {
            break;
        }
        done += n;
    }
    buf.truncate(done);
    Ok(buf)
}

/// Reads a whole file.
pub(crate) fn read_all<F: File>(f: &mut F) -> Result<Vec<u8>> {
    let size = f.size()?;
    read_range(f, 0, size as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(m: &mut Vec<u8>, log: &mut Vec<Undo>, op: &str, a: u64, b: &[u8]) {
        match op {
            "w" => {
                let size_before = m.len() as u64;
                let end = (a as usize + b.len()).min(m.len());
                let old = if (a as usize) < m.len() {
                    m[a as usize..end].to_vec()
                } else {
                    vec![]
                };
                log.push(Undo::Write {
                    offset: a,
                    size_before,
                    old,
                });
                Medium::put(m, a, b).unwrap();
            }
            _ => {
                let size_before = m.len() as u64;
                let removed = if (a as usize) < m.len() {
                    m[a as usize..].to_vec()
                } else {
                    vec![]
                };
                log.push(Undo::Resize {
                    size_before,
                    size_after: a,
                    removed,
                });
                m.resize(a as usize, 0);
            }
        }
    }

    #[test]
    fn roll_back_restores_the_synced_state_exactly() {
        let synced = b"hello world, this is synced".to_vec();
        let mut m = synced.clone();
        let mut log = Vec::new();
        apply(&mut m, &mut log, "w", 3, b"XYZ");
        apply(&mut m, &mut log, "w", 40, b"beyond the end");
        apply(&mut m, &mut log, "t", 5, b"");
        apply(&mut m, &mut log, "w", 2, b"overlapping write");
        apply(&mut m, &mut log, "t", 100, b"");
        apply(&mut m, &mut log, "w", 0, b"!");
        assert_ne!(m, synced);
        roll_back(&mut m, &log).unwrap();
        assert_eq!(m, synced);
    }

    #[test]
    fn dir_of_takes_the_parent() {
        assert_eq!(dir_of(FileName::new("/a/b/c.db")), "/a/b");
        assert_eq!(dir_of(FileName::new("c.db")), "");
        assert_eq!(dir_of(FileName::new("/c.db")), "");
        assert_eq!(
            dir_of(FileName::from_bytes(b"/\xff/c.db")).as_bytes(),
            b"/\xff"
        );
    }
}
