//! Facts of SQLite's file formats the mappers read.

/// Whether `n` is a valid SQLite page size.
pub(crate) fn is_page_size(n: usize) -> bool {
    (512..=65536).contains(&n) && n.is_power_of_two()
}

/// `(page_size, reserve)` from the first bytes of a database header.
pub(crate) fn db_header(h: &[u8]) -> Option<(usize, usize)> {
    if h.len() < 21 {
        return None;
    }
    let raw = usize::from(u16::from_be_bytes([h[16], h[17]]));
    let p = if raw == 1 { 65536 } else { raw };
    is_page_size(p).then_some((p, usize::from(h[20])))
}

/// The big-endian `u32` at the start of `b`.
pub(crate) fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The page number SQLite reserves for its super-journal pointer (the page
/// holding the pending byte), never a real page image in a journal.
pub(crate) fn pending_byte_pgno(page_size: usize) -> u32 {
    (0x4000_0000 / page_size as u32) + 1
}
