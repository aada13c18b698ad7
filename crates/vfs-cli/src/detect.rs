//! What a database file is, from its bytes alone (no key, no SQLite): its
//! layers, page size, reserve, journal mode, and the journal or WAL beside
//! it.

use serde::Serialize;
use vfs_cksm::Mode;
use vfs_crypto::EncryptionHeader;

use crate::error::{CliError, Result};
use crate::stack::Layers;
use crate::storage::Storage;

/// SQLite's header string, bytes 0–15 of a plaintext database.
pub const MAGIC: &[u8; 16] = b"SQLite format 3\0";
/// The first 8 bytes of a rollback journal header in use.
pub const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
/// Bytes of a WAL header and of a WAL frame header.
pub(crate) const WAL_HEADER: u64 = 32;
pub(crate) const FRAME_HEADER: u64 = 24;

/// A rollback journal beside the database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct JournalInfo {
    /// Its path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Whether its header is live: a transaction was interrupted (or one is
    /// running right now in another process), and the next read-write open
    /// rolls it back.
    pub hot: bool,
}

/// A WAL beside the database.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalInfo {
    /// Its path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Frames of the WAL's current generation (their salts match the WAL
    /// header), checksums not verified: pages not yet checkpointed into
    /// the database file.
    pub frames: u64,
    /// Commit frames among them (transactions).
    pub commits: u64,
}

/// What a database file is.
#[derive(Clone, Debug)]
pub struct Layout {
    /// The file's path.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes per page (0 for an empty file).
    pub page_size: usize,
    /// Reserved bytes per page (header byte 20).
    pub reserve: usize,
    /// Its page layers.
    pub layers: Layers,
    /// The clear parts of an encrypted file.
    pub encryption: Option<EncryptionHeader>,
    /// Header bytes 18–19 say WAL (2) rather than rollback journal (1).
    pub wal_mode: bool,
    /// A rollback journal beside it.
    pub journal: Option<JournalInfo>,
    /// A WAL beside it.
    pub wal: Option<WalInfo>,
}

impl Layout {
    /// Whether the file is empty (a database with no page written yet).
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Whole pages in the file.
    pub fn pages(&self) -> u64 {
        if self.page_size == 0 {
            0
        } else {
            self.size / self.page_size as u64
        }
    }

    /// `rollback` or `wal`, as header bytes 18–19 say.
    pub fn journal_mode(&self) -> &'static str {
        if self.wal_mode { "wal" } else { "rollback" }
    }
}

/// The page size in header bytes 16–17 (1 means 65536), if valid.
pub fn header_page_size(head: &[u8]) -> Option<usize> {
    let raw = usize::from(u16::from_be_bytes([*head.get(16)?, *head.get(17)?]));
    let n = if raw == 1 { 65536 } else { raw };
    ((512..=65536).contains(&n) && n.is_power_of_two()).then_some(n)
}

/// The checksum layer of a file with `reserve` bytes left by the layers
/// above (as `vfs_cksm` detects it: 8 cksumvfs, 12 CRC-32).
fn checksums_for(reserve: usize) -> Option<Mode> {
    match reserve {
        8 => Some(Mode::Cksumvfs),
        12 => Some(Mode::Crc32),
        _ => None,
    }
}

/// Reads what `path` is. Errors: no such file, or a file that is neither a
/// plaintext SQLite database nor one in a format of this workspace.
pub fn detect(storage: &dyn Storage, path: &str) -> Result<Layout> {
    let size = storage
        .size(path)?
        .ok_or_else(|| CliError::new(format!("{path}: no such file")))?;
    let mut layout = Layout {
        path: path.to_owned(),
        size,
        page_size: 0,
        reserve: 0,
        layers: Layers::PLAIN,
        encryption: None,
        wal_mode: false,
        journal: journal_beside(storage, path)?,
        wal: None,
    };
    if size == 0 {
        layout.wal = wal_beside(storage, path)?;
        return Ok(layout);
    }
    let head = storage.read(path, 0, 100)?;
    let not_a_db = |why: &str| {
        CliError::new(format!(
            "{path}: not an SQLite database, nor one in a format this tool knows ({why})"
        ))
    };
    if head.len() < 100 {
        return Err(not_a_db("shorter than a database header"));
    }
    let page_size = header_page_size(&head).ok_or_else(|| not_a_db("no valid page size"))?;
    layout.page_size = page_size;
    layout.reserve = usize::from(head[20]);
    layout.wal_mode = head[18] == 2 && head[19] == 2;
    if head[..16] == *MAGIC {
        layout.layers.checksums = checksums_for(layout.reserve);
    } else {
        let page1 = storage.read(path, 0, page_size)?;
        let header = EncryptionHeader::parse(&page1).map_err(|e| not_a_db(e.message()))?;
        if header.reserve_above > 0 {
            // Checksums over the plaintext, stored encrypted
            // (`Cksm::new(Crypto::new(..))`): a layout the library reads
            // and writes, but not one this tool's stacks and checks know.
            return Err(CliError::new(format!(
                "{path}: page layers over encryption ({} reserved bytes inside the \
                 encrypted part of each page, as with checksums over encryption): this tool \
                 handles encryption over checksums and each alone",
                header.reserve_above
            ))
            .hint("open it through the stack that wrote it (e.g. Cksm::new(Crypto::new(..)))"));
        }
        let below = header.reserve_below;
        layout.layers = Layers {
            encrypted: true,
            checksums: match below {
                0 => None,
                b => Some(checksums_for(b).ok_or_else(|| {
                    not_a_db(&format!(
                        "{b} reserved bytes below encryption: no known layer"
                    ))
                })?),
            },
        };
        layout.encryption = Some(header);
    }
    layout.wal = wal_beside(storage, path)?;
    Ok(layout)
}

/// The rollback journal beside `path`, if any.
pub fn journal_beside(storage: &dyn Storage, path: &str) -> Result<Option<JournalInfo>> {
    let jpath = format!("{path}-journal");
    let Some(size) = storage.size(&jpath)? else {
        return Ok(None);
    };
    let head = storage.read(&jpath, 0, 8)?;
    Ok(Some(JournalInfo {
        hot: head == JOURNAL_MAGIC,
        path: jpath,
        size,
    }))
}

/// The WAL beside `path`, if any.
pub fn wal_beside(storage: &dyn Storage, path: &str) -> Result<Option<WalInfo>> {
    let wpath = format!("{path}-wal");
    let Some(size) = storage.size(&wpath)? else {
        return Ok(None);
    };
    let mut info = WalInfo {
        path: wpath,
        size,
        frames: 0,
        commits: 0,
    };
    let header = storage.read(&info.path, 0, WAL_HEADER as usize)?;
    let magic_ok = header.len() == WAL_HEADER as usize
        && matches!(
            u32::from_be_bytes([header[0], header[1], header[2], header[3]]),
            0x377f_0682 | 0x377f_0683
        );
    if !magic_ok {
        return Ok(Some(info));
    }
    let page = u64::from(u32::from_be_bytes([
        header[8], header[9], header[10], header[11],
    ]));
    if page == 0 {
        return Ok(Some(info));
    }
    let salts = &header[16..24];
    let frame = FRAME_HEADER + page;
    // Frame headers, read a batch at a time.
    let mut at = WAL_HEADER;
    let batch = (1 << 20) / frame + 1;
    'frames: while at + frame <= size {
        let chunk = storage.read(&info.path, at, (batch * frame) as usize)?;
        for f in chunk.chunks(frame as usize) {
            if (f.len() as u64) < frame || f[8..16] != *salts {
                break 'frames;
            }
            info.frames += 1;
            if f[4..8] != [0, 0, 0, 0] {
                info.commits += 1;
            }
        }
        at += batch * frame;
    }
    Ok(Some(info))
}
