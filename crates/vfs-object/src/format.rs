//! The commit object, byte by byte (format version 1; `docs/formats.md`).
//!
//! ```text
//! 0    8   magic "SQLVFSOB"
//! 8    2   LE16 format version (1)
//! 10   2   LE16 object kind (1 = log commit, 2 = snapshot, 3 = one page
//!          group of a snapshot; 4, a group snapshot's manifest, has its
//!          own layout: `page_groups.rs`)
//! 12   4   LE32 header length H (96)
//! 16   8   LE64 LSN
//! 24   8   LE64 parent LSN (LSN − 1)
//! 32   16  transaction id (random)
//! 48   8   LE64 database size in bytes after the commit
//! 56   4   LE32 chunk size C (a power of two, 512 ..= 65536)
//! 60   4   LE32 entry count N
//! 64   8   LE64 commit time, ms since the Unix epoch (never below the parent's)
//! 72   4   LE32 flags (bit 0 full image, bit 1 void, bit 2 collected;
//!          others 0)
//! 76   4   LE32 index entry length E (16)
//! 80   8   LE64 data offset D = H + N·E
//! 88   4   LE32 reserved (0)
//! 92   4   LE32 CRC-32 (IEEE) of bytes 0 .. H + N·E, with this field as 0
//! H    N·E index, sorted by chunk, strictly increasing:
//!          LE32 chunk number, LE32 stored length (C), LE32 CRC-32 of the
//!          stored bytes, LE32 encoding (0 = the page as written)
//! D    …   the pages, back to back in index order
//! ```

use std::fmt;

/// The first eight bytes of every object.
pub const MAGIC: [u8; 8] = *b"SQLVFSOB";
/// The format version this crate writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// Object kind: one committed transaction.
pub const KIND_COMMIT: u16 = 1;
/// Object kind: the whole database at one LSN (`snap/<LSN>`).
pub const KIND_SNAPSHOT: u16 = 2;
/// Object kind: the pages of one page group of a snapshot written as
/// groups (`group/<LSN>/<g>`, see `page_groups.rs`).
pub const KIND_GROUP: u16 = 3;
/// Length of the version-1 header.
pub const HEADER_LEN: usize = 96;
/// Length of one version-1 index entry.
pub const ENTRY_LEN: usize = 16;
/// Flag: the commit stores every chunk of the database (required when the
/// chunk size changes).
pub const FLAG_FULL_IMAGE: u32 = 1;
/// Flag: a fence written by a writer that could not learn whether its own
/// commit landed; it changes nothing.
pub const FLAG_VOID: u32 = 2;
/// Flag (with [`FLAG_VOID`]): the tombstone garbage collection leaves at
/// `log/1` in place of the first commit, so that key can never be created
/// again; nothing may be applied from it.
pub const FLAG_COLLECTED: u32 = 4;
const KNOWN_FLAGS: u32 = FLAG_FULL_IMAGE | FLAG_VOID | FLAG_COLLECTED;
const CRC_AT: usize = 92;

/// Smallest and largest chunk sizes (SQLite's page sizes).
pub const MIN_CHUNK: u32 = 512;
/// See [`MIN_CHUNK`].
pub const MAX_CHUNK: u32 = 65536;

/// Whether `size` is a valid chunk size.
pub fn valid_chunk_size(size: u64) -> bool {
    size.is_power_of_two() && (u64::from(MIN_CHUNK)..=u64::from(MAX_CHUNK)).contains(&size)
}

/// The decoded header of a commit object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// [`KIND_COMMIT`] or [`KIND_SNAPSHOT`].
    pub kind: u16,
    pub lsn: u64,
    pub parent: u64,
    pub txid: [u8; 16],
    pub db_size: u64,
    pub chunk_size: u32,
    pub entries: u32,
    pub time_ms: u64,
    pub flags: u32,
    pub data_offset: u64,
}

impl Header {
    /// Number of chunks of the database after this commit.
    pub fn chunk_count(&self) -> u64 {
        self.db_size.div_ceil(u64::from(self.chunk_size))
    }

    /// Bytes of header and index.
    pub fn index_end(&self) -> u64 {
        self.data_offset
    }

    /// Total object length implied by the header (every entry stores one
    /// chunk in version 1).
    pub fn object_len(&self) -> u64 {
        self.data_offset + u64::from(self.entries) * u64::from(self.chunk_size)
    }
}

/// One index entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub chunk: u32,
    pub crc: u32,
}

/// A commit's header and index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Index {
    pub header: Header,
    pub entries: Vec<Entry>,
}

impl Index {
    /// Byte offset in the object of entry `i`'s page.
    pub fn page_offset(&self, i: usize) -> u64 {
        self.header.data_offset + i as u64 * u64::from(self.header.chunk_size)
    }
}

/// Why bytes are not a valid commit object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError(pub String);

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(msg: impl Into<String>) -> FormatError {
    FormatError(msg.into())
}

/// What a commit object is built from.
pub struct NewCommit<'a> {
    pub lsn: u64,
    pub txid: [u8; 16],
    pub db_size: u64,
    pub chunk_size: u32,
    pub time_ms: u64,
    pub flags: u32,
    /// `(chunk, bytes)`, sorted by chunk, each exactly `chunk_size` long.
    pub pages: &'a [(u32, &'a [u8])],
}

/// Encodes a commit object.
pub fn encode(c: &NewCommit<'_>) -> Vec<u8> {
    encode_as(c, KIND_COMMIT)
}

/// Encodes an object of `kind` ([`KIND_COMMIT`] or [`KIND_SNAPSHOT`]).
pub fn encode_as(c: &NewCommit<'_>, kind: u16) -> Vec<u8> {
    let n = c.pages.len();
    let data_offset = HEADER_LEN + n * ENTRY_LEN;
    let mut out = Vec::with_capacity(data_offset + n * c.chunk_size as usize);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    out.extend_from_slice(&c.lsn.to_le_bytes());
    out.extend_from_slice(&c.lsn.saturating_sub(1).to_le_bytes());
    out.extend_from_slice(&c.txid);
    out.extend_from_slice(&c.db_size.to_le_bytes());
    out.extend_from_slice(&c.chunk_size.to_le_bytes());
    out.extend_from_slice(&(n as u32).to_le_bytes());
    out.extend_from_slice(&c.time_ms.to_le_bytes());
    out.extend_from_slice(&c.flags.to_le_bytes());
    out.extend_from_slice(&(ENTRY_LEN as u32).to_le_bytes());
    out.extend_from_slice(&(data_offset as u64).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // CRC, filled below
    debug_assert_eq!(out.len(), HEADER_LEN);
    for (chunk, bytes) in c.pages {
        out.extend_from_slice(&chunk.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(bytes).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
    }
    let crc = crc32fast::hash(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    for (_, bytes) in c.pages {
        out.extend_from_slice(bytes);
    }
    out
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes the header from the first [`HEADER_LEN`] (or more) bytes. Checks
/// what the header alone can tell; [`decode_index`] checks the rest.
pub fn decode_header(b: &[u8]) -> Result<Header, FormatError> {
    if b.len() < HEADER_LEN {
        return Err(bad(format!(
            "object is {} bytes, shorter than a {HEADER_LEN}-byte header",
            b.len()
        )));
    }
    if b[..8] != MAGIC {
        return Err(bad("not a vfs-object commit object (bad magic)"));
    }
    let version = le16(b, 8);
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version {version} (this build reads version {FORMAT_VERSION})"
        )));
    }
    let kind = le16(b, 10);
    if kind != KIND_COMMIT && kind != KIND_SNAPSHOT && kind != KIND_GROUP {
        return Err(bad(format!(
            "object kind {kind} is neither a commit (1), a snapshot (2) nor a page group (3)"
        )));
    }
    let header_len = le32(b, 12) as usize;
    let entry_len = le32(b, 76) as usize;
    if header_len != HEADER_LEN || entry_len != ENTRY_LEN {
        return Err(bad(format!(
            "header length {header_len} / entry length {entry_len} (version 1 has {HEADER_LEN} / {ENTRY_LEN})"
        )));
    }
    let h = Header {
        kind,
        lsn: le64(b, 16),
        parent: le64(b, 24),
        txid: b[32..48].try_into().expect("16 bytes"),
        db_size: le64(b, 48),
        chunk_size: le32(b, 56),
        entries: le32(b, 60),
        time_ms: le64(b, 64),
        flags: le32(b, 72),
        data_offset: le64(b, 80),
    };
    if h.lsn == 0 || h.parent != h.lsn - 1 {
        return Err(bad(format!(
            "LSN {} with parent {} (the parent must be LSN − 1)",
            h.lsn, h.parent
        )));
    }
    if !valid_chunk_size(u64::from(h.chunk_size)) {
        return Err(bad(format!("chunk size {} is not valid", h.chunk_size)));
    }
    if h.flags & !KNOWN_FLAGS != 0 {
        return Err(bad(format!("unknown flags {:#x}", h.flags)));
    }
    if le32(b, 88) != 0 {
        return Err(bad("reserved header field is not zero"));
    }
    let expected_data = HEADER_LEN as u64 + u64::from(h.entries) * ENTRY_LEN as u64;
    if h.data_offset != expected_data {
        return Err(bad(format!(
            "data offset {} for {} entries (expected {expected_data})",
            h.data_offset, h.entries
        )));
    }
    if u64::from(h.entries) > h.chunk_count() {
        return Err(bad(format!(
            "{} entries for a database of {} chunks",
            h.entries,
            h.chunk_count()
        )));
    }
    if h.chunk_count() > u64::from(u32::MAX) {
        return Err(bad(format!("database size {} is too large", h.db_size)));
    }
    if h.flags & FLAG_VOID != 0 && h.entries != 0 {
        return Err(bad("a void commit stores pages"));
    }
    if h.flags & FLAG_COLLECTED != 0 && h.flags & FLAG_VOID == 0 {
        return Err(bad("a collected commit that is not void"));
    }
    if (kind == KIND_SNAPSHOT || kind == KIND_GROUP) && h.flags != 0 {
        return Err(bad(format!("a snapshot with flags {:#x}", h.flags)));
    }
    Ok(h)
}

/// Decodes and checks header and index from a prefix of the object that
/// holds at least `header.index_end()` bytes. `object_len`, when known
/// (from a listing), must match what the header implies.
pub fn decode_index(b: &[u8], object_len: Option<u64>) -> Result<Index, FormatError> {
    let header = decode_header(b)?;
    let end = header.index_end();
    if (b.len() as u64) < end {
        return Err(bad(format!(
            "index ends at byte {end}, only {} bytes given",
            b.len()
        )));
    }
    if let Some(len) = object_len
        && len != header.object_len()
    {
        return Err(bad(format!(
            "object is {len} bytes, its header describes {}",
            header.object_len()
        )));
    }
    let end = end as usize;
    let mut crc = crc32fast::Hasher::new();
    crc.update(&b[..CRC_AT]);
    crc.update(&[0; 4]);
    crc.update(&b[CRC_AT + 4..end]);
    if crc.finalize() != le32(b, CRC_AT) {
        return Err(bad("header/index checksum mismatch"));
    }
    let count = header.chunk_count();
    let mut entries = Vec::with_capacity(header.entries as usize);
    let mut previous: Option<u32> = None;
    for at in (HEADER_LEN..end).step_by(ENTRY_LEN) {
        let chunk = le32(b, at);
        let len = le32(b, at + 4);
        let encoding = le32(b, at + 12);
        if previous.is_some_and(|p| chunk <= p) {
            return Err(bad("index is not sorted by chunk"));
        }
        if u64::from(chunk) >= count {
            return Err(bad(format!(
                "chunk {chunk} is past the end of the database ({count} chunks)"
            )));
        }
        if len != header.chunk_size || encoding != 0 {
            return Err(bad(format!(
                "entry for chunk {chunk}: length {len}, encoding {encoding} (version 1 stores raw chunks of {})",
                header.chunk_size
            )));
        }
        previous = Some(chunk);
        entries.push(Entry {
            chunk,
            crc: le32(b, at + 8),
        });
    }
    if header.flags & FLAG_FULL_IMAGE != 0 && u64::from(header.entries) != count {
        return Err(bad(format!(
            "full image with {} of {count} chunks",
            header.entries
        )));
    }
    Ok(Index { header, entries })
}

/// Checks a page fetched for `entry`.
pub fn check_page(entry_crc: u32, bytes: &[u8]) -> bool {
    crc32fast::hash(bytes) == entry_crc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let a = vec![1u8; 512];
        let b = vec![2u8; 512];
        encode(&NewCommit {
            lsn: 7,
            txid: [9; 16],
            db_size: 512 * 4,
            chunk_size: 512,
            time_ms: 1234,
            flags: 0,
            pages: &[(0, &a), (3, &b)],
        })
    }

    #[test]
    fn round_trip() {
        let bytes = sample();
        let idx = decode_index(&bytes, Some(bytes.len() as u64)).unwrap();
        assert_eq!(idx.header.lsn, 7);
        assert_eq!(idx.header.parent, 6);
        assert_eq!(idx.header.txid, [9; 16]);
        assert_eq!(idx.header.db_size, 2048);
        assert_eq!(idx.entries.len(), 2);
        assert_eq!(idx.entries[1].chunk, 3);
        let off = idx.page_offset(1) as usize;
        assert_eq!(&bytes[off..off + 512], &[2u8; 512][..]);
        assert!(check_page(idx.entries[1].crc, &bytes[off..off + 512]));
        assert!(!check_page(idx.entries[0].crc, &bytes[off..off + 512]));
        assert_eq!(idx.header.object_len(), bytes.len() as u64);
    }

    #[test]
    fn every_single_byte_flip_in_header_or_index_is_refused() {
        let bytes = sample();
        let end = HEADER_LEN + 2 * ENTRY_LEN;
        for i in 0..end {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            assert!(
                decode_index(&b, Some(b.len() as u64)).is_err(),
                "flip at byte {i} accepted"
            );
        }
    }

    #[test]
    fn snapshots_and_tombstones_decode_only_as_what_they_are() {
        let a = vec![1u8; 512];
        let snap = |flags| {
            encode_as(
                &NewCommit {
                    lsn: 9,
                    txid: [3; 16],
                    db_size: 512 * 4,
                    chunk_size: 512,
                    time_ms: 0,
                    flags,
                    pages: &[(2, &a)],
                },
                KIND_SNAPSHOT,
            )
        };
        let ok = snap(0);
        let idx = decode_index(&ok, Some(ok.len() as u64)).unwrap();
        assert_eq!((idx.header.kind, idx.header.lsn), (KIND_SNAPSHOT, 9));
        assert!(decode_index(&snap(FLAG_FULL_IMAGE), None).is_err());
        let tomb = |flags| {
            encode(&NewCommit {
                lsn: 1,
                txid: [0; 16],
                db_size: 0,
                chunk_size: 512,
                time_ms: 0,
                flags,
                pages: &[],
            })
        };
        let t = decode_header(&tomb(FLAG_VOID | FLAG_COLLECTED)).unwrap();
        assert_eq!(t.kind, KIND_COMMIT);
        assert!(decode_header(&tomb(FLAG_COLLECTED)).is_err());
        // Kind 3 is a page group (flags 0, like a snapshot); kind 4 (a
        // manifest) and beyond are not commit objects.
        let mut kind3 = ok.clone();
        kind3[10] = 3;
        assert_eq!(decode_header(&kind3).unwrap().kind, KIND_GROUP);
        let mut kind5 = ok.clone();
        kind5[10] = 5;
        assert!(decode_header(&kind5).unwrap_err().0.contains("kind 5"));
    }

    #[test]
    fn truncated_and_mislabelled_objects_are_refused() {
        let bytes = sample();
        assert!(decode_index(&bytes[..HEADER_LEN - 1], None).is_err());
        assert!(decode_index(&bytes[..HEADER_LEN + 3], None).is_err());
        assert!(decode_index(&bytes, Some(bytes.len() as u64 - 1)).is_err());
        let mut v2 = bytes.clone();
        v2[8] = 2;
        let e = decode_header(&v2).unwrap_err();
        assert!(e.0.contains("format version 2"), "{e}");
    }
}
