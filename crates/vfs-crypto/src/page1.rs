//! The plaintext of page 1 a main-database handle keeps.

/// Page 1 as this handle last wrote or authenticated it: the stored bytes
/// (through the end of this layer's slice; bytes below belong to the
/// layers below, which check them) and the plaintext they decode to. A
/// stored page 1 equal to `stored` decodes to `plain` without decrypting
/// again; any other byte, a tampered one included, fails the comparison
/// and is decrypted and authenticated. SQLite reads page 1's change
/// counter at the start of every rollback-mode transaction; this spares a
/// decryption each time (a 4 KiB comparison costs about a twentieth).
pub(crate) struct Page1 {
    pub(crate) stored: Vec<u8>,
    pub(crate) plain: Vec<u8>,
}

impl Page1 {
    pub(crate) fn matches(&self, stored: &[u8], slice_end: usize) -> bool {
        self.plain.len() == stored.len() && stored[..slice_end] == self.stored[..]
    }

    pub(crate) fn empty() -> Page1 {
        Page1 {
            stored: Vec::new(),
            plain: Vec::new(),
        }
    }
}
