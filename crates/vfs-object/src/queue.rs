//! The group-commit queue on disk: one file per queued transaction, written
//! durably before `COMMIT` returns (`docs/object.md`, "Group commit";
//! layout in `docs/formats.md`, "Group commit queue files").
//!
//! ```text
//! 0    8   magic "SQLVFSQU"
//! 8    2   LE16 format version (1)
//! 10   2   LE16 reserved (0)
//! 12   4   LE32 header length H (64)
//! 16   8   LE64 sequence number (the file's name)
//! 24   8   queue id (random, shared by the files of one queue)
//! 32   8   LE64 base LSN: the store state the transaction was made on
//! 40   4   LE32 database key length K
//! 44   4   LE32 reserved (0)
//! 48   8   LE64 transaction length T
//! 56   4   LE32 reserved (0)
//! 60   4   LE32 CRC-32C of the whole file, this field as 0
//! H    K   database key (UTF-8: `<prefix>/<name>`)
//! H+K  T   the transaction, as a commit object (kind 1)
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::format::{self, Index, KIND_COMMIT};

/// The first eight bytes of every queue file.
pub const QUEUE_MAGIC: [u8; 8] = *b"SQLVFSQU";
/// The queue file format version this crate writes and reads.
pub const QUEUE_VERSION: u16 = 1;
/// Length of the version-1 header.
pub const QUEUE_HEADER_LEN: usize = 64;
const CRC_AT: usize = 60;
/// Queue files are `<sequence number, 20 digits>.txn`.
const SUFFIX: &str = ".txn";
/// Written first, then renamed: a crash leaves at most one of these, for a
/// transaction whose `COMMIT` never returned.
const TEMP_SUFFIX: &str = ".tmp";

/// One queued transaction, as read from or written to its file.
pub struct QueueFile {
    pub seq: u64,
    pub queue_id: [u8; 8],
    pub base_lsn: u64,
    pub db_key: String,
    /// The transaction as a commit object.
    pub body: Vec<u8>,
}

/// A decoded queue file: the record and its transaction's index.
pub struct Loaded {
    pub file: QueueFile,
    pub idx: Index,
    pub path: PathBuf,
}

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78).
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut crc = !0u32;
    for &b in data {
        crc = table[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// The file name of sequence number `seq`.
pub fn file_name(seq: u64) -> String {
    format!("{seq:020}{SUFFIX}")
}

/// Encodes `f` as a queue file.
pub fn encode(f: &QueueFile) -> Vec<u8> {
    let key = f.db_key.as_bytes();
    let mut out = Vec::with_capacity(QUEUE_HEADER_LEN + key.len() + f.body.len());
    out.extend_from_slice(&QUEUE_MAGIC);
    out.extend_from_slice(&QUEUE_VERSION.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes());
    out.extend_from_slice(&(QUEUE_HEADER_LEN as u32).to_le_bytes());
    out.extend_from_slice(&f.seq.to_le_bytes());
    out.extend_from_slice(&f.queue_id);
    out.extend_from_slice(&f.base_lsn.to_le_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&(f.body.len() as u64).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes()); // CRC, below
    debug_assert_eq!(out.len(), QUEUE_HEADER_LEN);
    out.extend_from_slice(key);
    out.extend_from_slice(&f.body);
    let crc = crc32c(&out);
    out[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    out
}

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn le64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Decodes a queue file; every field is checked, and the checksum covers
/// every byte.
pub fn decode(bytes: &[u8]) -> Result<(QueueFile, Index), String> {
    if bytes.len() < QUEUE_HEADER_LEN {
        return Err(format!("{} bytes is shorter than the header", bytes.len()));
    }
    if bytes[..8] != QUEUE_MAGIC {
        return Err("not a queue file (wrong magic)".into());
    }
    let version = u16::from_le_bytes([bytes[8], bytes[9]]);
    if version != QUEUE_VERSION {
        return Err(format!("unknown queue file version {version}"));
    }
    let mut zeroed = bytes.to_vec();
    zeroed[CRC_AT..CRC_AT + 4].fill(0);
    let want = le32(bytes, CRC_AT);
    if crc32c(&zeroed) != want {
        return Err("its CRC-32C does not match (damaged or truncated)".into());
    }
    if u16::from_le_bytes([bytes[10], bytes[11]]) != 0
        || le32(bytes, 12) as usize != QUEUE_HEADER_LEN
        || le32(bytes, 44) != 0
        || le32(bytes, 56) != 0
    {
        return Err("malformed header".into());
    }
    let key_len = le32(bytes, 40) as usize;
    let body_len = le64(bytes, 48);
    if (QUEUE_HEADER_LEN as u64)
        .checked_add(key_len as u64)
        .and_then(|n| n.checked_add(body_len))
        != Some(bytes.len() as u64)
    {
        return Err("its lengths do not add up to the file's size".into());
    }
    let key_end = QUEUE_HEADER_LEN + key_len;
    let db_key = std::str::from_utf8(&bytes[QUEUE_HEADER_LEN..key_end])
        .map_err(|_| "its database key is not UTF-8".to_owned())?
        .to_owned();
    let body = bytes[key_end..].to_vec();
    let idx = format::decode_index(&body, Some(body.len() as u64))
        .map_err(|e| format!("its transaction is not a valid commit object: {e}"))?;
    if idx.header.kind != KIND_COMMIT {
        return Err("its transaction is not a commit object".into());
    }
    for (i, e) in idx.entries.iter().enumerate() {
        let at = idx.page_offset(i) as usize;
        if !format::check_page(e.crc, &body[at..at + idx.header.chunk_size as usize]) {
            return Err(format!("page {} fails its CRC-32", e.chunk));
        }
    }
    let mut queue_id = [0u8; 8];
    queue_id.copy_from_slice(&bytes[24..32]);
    Ok((
        QueueFile {
            seq: le64(bytes, 16),
            queue_id,
            base_lsn: le64(bytes, 32),
            db_key,
            body,
        },
        idx,
    ))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `f` into `dir` durably: a temporary name, fsync, rename, fsync of
/// the directory. Returns the file's path.
pub fn write(dir: &Path, f: &QueueFile) -> std::io::Result<PathBuf> {
    let bytes = encode(f);
    let path = dir.join(file_name(f.seq));
    let temp = dir.join(format!("{:020}{TEMP_SUFFIX}", f.seq));
    let mut out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temp)?;
    out.write_all(&bytes)?;
    out.sync_all()?;
    drop(out);
    fs::rename(&temp, &path)?;
    sync_dir(dir)?;
    Ok(path)
}

/// Deletes uploaded queue files, then syncs the directory.
pub fn remove(dir: &Path, paths: &[PathBuf]) -> std::io::Result<()> {
    for p in paths {
        match fs::remove_file(p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    sync_dir(dir)
}

/// Every queued transaction in `dir` (created if missing), oldest first.
/// Temporary files (a crash before the rename: their `COMMIT` never
/// returned) are deleted. Anything else that is not a valid queue file of
/// `db_key`, or a gap in the sequence, is an error naming the file: a
/// queue that does not verify is never skipped.
pub fn load(dir: &Path, db_key: &str) -> Result<Vec<Loaded>, String> {
    fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the queue directory {}: {e}", dir.display()))?;
    let entries = fs::read_dir(dir)
        .map_err(|e| format!("cannot list the queue directory {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    let mut removed_temp = false;
    for entry in entries {
        let entry =
            entry.map_err(|e| format!("cannot list the queue directory {}: {e}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.ends_with(TEMP_SUFFIX) {
            fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
            removed_temp = true;
            continue;
        }
        let seq = name
            .strip_suffix(SUFFIX)
            .filter(|s| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| {
                format!(
                    "{} is not a queue file (queue files are <20 digits>.txn); \
                     the queue directory holds nothing else",
                    path.display()
                )
            })?;
        let bytes = fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let (file, idx) = decode(&bytes)
            .map_err(|e| format!("queue file {} does not verify: {e}", path.display()))?;
        if file.seq != seq {
            return Err(format!(
                "queue file {} says it is number {}",
                path.display(),
                file.seq
            ));
        }
        if file.db_key != db_key {
            return Err(format!(
                "queue file {} belongs to database {:?}, not {db_key:?}",
                path.display(),
                file.db_key
            ));
        }
        out.push(Loaded { file, idx, path });
    }
    if removed_temp {
        sync_dir(dir).map_err(|e| format!("cannot sync {}: {e}", dir.display()))?;
    }
    out.sort_by_key(|l| l.file.seq);
    for pair in out.windows(2) {
        if pair[1].file.seq != pair[0].file.seq + 1 {
            return Err(format!(
                "queue file {} is missing (the queue jumps from {} to {})",
                dir.join(file_name(pair[0].file.seq + 1)).display(),
                pair[0].file.seq,
                pair[1].file.seq
            ));
        }
        if pair[1].file.queue_id != pair[0].file.queue_id {
            return Err(format!(
                "queue file {} belongs to another queue than {}",
                pair[1].path.display(),
                pair[0].path.display()
            ));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> QueueFile {
        let page = vec![7u8; 512];
        let body = format::encode(&format::NewCommit {
            lsn: 4,
            txid: [3; 16],
            db_size: 1024,
            chunk_size: 512,
            time_ms: 9,
            flags: 0,
            pages: &[(1, &page[..])],
        });
        QueueFile {
            seq: 12,
            queue_id: [5; 8],
            base_lsn: 3,
            db_key: "t/a.db".into(),
            body,
        }
    }

    #[test]
    fn crc32c_check_value() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn round_trip_and_every_byte_matters() {
        let bytes = encode(&sample());
        let (f, idx) = decode(&bytes).unwrap();
        assert_eq!((f.seq, f.base_lsn, f.queue_id), (12, 3, [5; 8]));
        assert_eq!(f.db_key, "t/a.db");
        assert_eq!(idx.entries.len(), 1);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x40;
            assert!(decode(&bad).is_err(), "a change of byte {i} went through");
        }
        for n in 0..bytes.len() {
            assert!(
                decode(&bytes[..n]).is_err(),
                "truncated to {n} went through"
            );
        }
    }
}
