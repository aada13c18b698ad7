//! The plaintext of page 1 a main-database handle keeps.

use std::sync::Arc;

use zeroize::Zeroizing;

use crate::derive::DbKeys;

/// Page 1 as this handle last wrote or authenticated it: the stored bytes
/// (through the end of this layer's slice; bytes below belong to the
/// layers below, which check them), the plaintext they decode to, the
/// keys that authenticated them and the id they carry. A stored page 1
/// equal to `stored`, under the same trusted keys, decodes to `plain`
/// without decrypting again; any other byte, a tampered one included,
/// fails the comparison and is decrypted and authenticated. SQLite reads
/// page 1's change counter at the start of every rollback-mode
/// transaction; this spares a decryption each time (a 4 KiB comparison
/// costs about a twentieth).
///
/// Why reusing the plaintext is sound: opening an image is a
/// deterministic function of the key, the associated data and the stored
/// bytes. The associated data of a database page 1 is made of the
/// descriptor and salt (stored bytes 0..16 and the slice, both compared),
/// the class (database), the page size and the page number (1, offset 0:
/// the cache serves main-database page 1 only) and the clear header bytes
/// 16..24 (compared); there is no binding that depends on state (journal
/// records and WAL frames, whose bindings do, never come here). So stored
/// bytes equal to ones that authenticated under the same keys
/// authenticate again and decrypt to the same plaintext; SQLite's own
/// checks of the plaintext still run on every read.
///
/// The buffers are kept from one page 1 to the next (no allocation per
/// commit); the plaintext is overwritten in place, zeroized when its
/// buffer must grow and when the handle closes.
pub(crate) struct Page1 {
    stored: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    pub(crate) id: u32,
    pub(crate) keys: Arc<DbKeys>,
}

impl Page1 {
    /// Whether `stored` (a whole stored page 1) is the cached one.
    pub(crate) fn matches(&self, stored: &[u8], slice_end: usize) -> bool {
        self.plain.len() == stored.len() && stored[..slice_end] == self.stored[..]
    }

    /// The plaintext.
    pub(crate) fn plain(&self) -> &[u8] {
        &self.plain
    }
}

/// A page 1 being written or authenticated: the buffers of the handle's
/// last [`Page1`], which matches nothing until [`finish`](Self::finish)
/// (a draft dropped on an error leaves the handle without a cached page
/// 1, and its plaintext zeroized).
pub(crate) struct Page1Draft {
    stored: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
}

impl Page1Draft {
    /// A draft reusing `old`'s buffers.
    pub(crate) fn new(old: Option<Page1>) -> Page1Draft {
        match old {
            Some(o) => Page1Draft {
                stored: o.stored,
                plain: o.plain,
            },
            None => Page1Draft {
                stored: Vec::new(),
                plain: Zeroizing::new(Vec::new()),
            },
        }
    }

    /// The plaintext the stored bytes decode to.
    pub(crate) fn set_plain(&mut self, plain: &[u8]) -> &mut [u8] {
        if self.plain.capacity() < plain.len() {
            // The old buffer is zeroized as it is dropped; never let a
            // reallocation free it as it is.
            self.plain = Zeroizing::new(Vec::with_capacity(plain.len()));
        }
        self.plain.clear();
        self.plain.extend_from_slice(plain);
        &mut self.plain
    }

    /// The stored bytes, through the end of this layer's slice.
    pub(crate) fn set_stored(&mut self, stored: &[u8]) {
        self.stored.clear();
        self.stored.extend_from_slice(stored);
    }

    /// The cached page 1: `stored` decodes to `plain` under `keys`.
    pub(crate) fn finish(self, id: u32, keys: Arc<DbKeys>) -> Page1 {
        Page1 {
            stored: self.stored,
            plain: self.plain,
            id,
            keys,
        }
    }
}
