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
/// The plaintext is zeroized when replaced by a larger one and when the
/// handle closes.
pub(crate) struct Page1 {
    stored: Vec<u8>,
    plain: Zeroizing<Vec<u8>>,
    pub(crate) id: u32,
    pub(crate) keys: Arc<DbKeys>,
}

impl Page1 {
    /// A cache of `stored` (the bytes up to `slice_end`) decoding to
    /// `plain`, reusing `old`'s buffers.
    pub(crate) fn new(
        old: Option<Page1>,
        stored: &[u8],
        plain: &[u8],
        id: u32,
        keys: Arc<DbKeys>,
    ) -> Page1 {
        let (mut s, mut p) = match old {
            Some(o) => (o.stored, o.plain),
            None => (Vec::new(), Zeroizing::new(Vec::new())),
        };
        s.clear();
        s.extend_from_slice(stored);
        if p.capacity() < plain.len() {
            // The old buffer is zeroized as it is dropped; never let a
            // reallocation free it as it is.
            p = Zeroizing::new(Vec::with_capacity(plain.len()));
        }
        p.clear();
        p.extend_from_slice(plain);
        Page1 {
            stored: s,
            plain: p,
            id,
            keys,
        }
    }

    /// Whether `stored` (a whole stored page 1) is the cached one.
    pub(crate) fn matches(&self, stored: &[u8], slice_end: usize) -> bool {
        self.plain.len() == stored.len() && stored[..slice_end] == self.stored[..]
    }

    /// The plaintext.
    pub(crate) fn plain(&self) -> &[u8] {
        &self.plain
    }
}
