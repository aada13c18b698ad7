//! `info`: what a file is, from its bytes alone (no key needed).

use std::fmt;

use serde::Serialize;
use vfs_crypto::KeyDerivation;

use crate::detect::{JournalInfo, Layout, MAGIC, WalInfo, detect};
use crate::error::Result;
use crate::storage::Storage;

/// The clear parts of an encrypted file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EncryptionInfo {
    /// The cipher.
    pub cipher: String,
    /// The format version.
    pub format_version: u8,
    /// `raw 256-bit key` or `argon2id m=… KiB t=… p=…`.
    pub key_derivation: String,
    /// Argon2id memory cost in KiB (passphrase databases).
    pub kdf_memory_kib: Option<u32>,
    /// Argon2id passes.
    pub kdf_passes: Option<u8>,
    /// Argon2id lanes.
    pub kdf_lanes: Option<u8>,
    /// The 24-bit key check value, hex.
    pub key_check: String,
    /// The database's salt, hex.
    pub salt: String,
}

/// SQLite's header fields (plaintext files; an encrypted file keeps them
/// encrypted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeaderInfo {
    /// File change counter.
    pub change_counter: u32,
    /// Database size in pages, as the header says.
    pub pages_in_header: u32,
    /// Schema format number.
    pub schema_format: u32,
    /// `utf-8`, `utf-16le` or `utf-16be`.
    pub text_encoding: String,
    /// `PRAGMA user_version`.
    pub user_version: u32,
    /// `PRAGMA application_id`.
    pub application_id: u32,
    /// The SQLite version that last wrote it (e.g. 3054001).
    pub sqlite_version: u32,
}

/// What `info` reports.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct InfoReport {
    /// The file.
    pub file: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its layers: `plain`, `cksumvfs`, `crc32`, `encrypted`, `encrypted
    /// over cksumvfs`, `encrypted over crc32` (`empty` for a 0-byte file).
    pub format: String,
    /// Whether it is encrypted.
    pub encrypted: bool,
    /// Its checksum format, if any.
    pub checksums: Option<String>,
    /// The clear parts of its encryption.
    pub encryption: Option<EncryptionInfo>,
    /// Bytes per page.
    pub page_size: u64,
    /// Reserved bytes per page.
    pub reserve: u64,
    /// Whole pages in the file.
    pub pages: u64,
    /// `rollback` or `wal`.
    pub journal_mode: String,
    /// SQLite's header (plaintext files only).
    pub header: Option<HeaderInfo>,
    /// A rollback journal beside it.
    pub journal: Option<JournalInfo>,
    /// A WAL beside it.
    pub wal: Option<WalInfo>,
    /// What an operator should know.
    pub notes: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Describes the file at `path`.
pub fn info(storage: &dyn Storage, path: &str) -> Result<InfoReport> {
    let layout = detect(storage, path)?;
    let header = if !layout.is_empty() && layout.encryption.is_none() {
        let head = storage.read(path, 0, 100)?;
        (head.len() == 100 && head[..16] == *MAGIC).then(|| HeaderInfo {
            change_counter: be32(&head, 24),
            pages_in_header: be32(&head, 28),
            schema_format: be32(&head, 44),
            text_encoding: match be32(&head, 56) {
                1 => "utf-8".into(),
                2 => "utf-16le".into(),
                3 => "utf-16be".into(),
                0 => "not set".into(),
                n => format!("unknown ({n})"),
            },
            user_version: be32(&head, 60),
            application_id: be32(&head, 68),
            sqlite_version: be32(&head, 96),
        })
    } else {
        None
    };
    let encryption = layout.encryption.as_ref().map(|h| {
        let params = match h.key_derivation {
            KeyDerivation::Argon2id(p) => Some(p),
            KeyDerivation::RawKey => None,
        };
        EncryptionInfo {
            cipher: "XAES-256-GCM".into(),
            format_version: h.format_version,
            key_derivation: h.key_derivation.to_string(),
            kdf_memory_kib: params.map(|p| p.memory_kib()),
            kdf_passes: params.map(|p| p.iterations),
            kdf_lanes: params.map(|p| p.lanes),
            key_check: hex(&h.key_check),
            salt: hex(&h.salt),
        }
    });
    Ok(InfoReport {
        file: path.to_owned(),
        size: layout.size,
        format: if layout.is_empty() {
            "empty".into()
        } else {
            layout.layers.to_string()
        },
        encrypted: layout.layers.encrypted,
        checksums: layout.layers.checksums.map(|m| m.name().to_owned()),
        encryption,
        page_size: layout.page_size as u64,
        reserve: layout.reserve as u64,
        pages: layout.pages(),
        journal_mode: layout.journal_mode().into(),
        notes: notes(&layout, header.as_ref()),
        header,
        journal: layout.journal.clone(),
        wal: layout.wal.clone(),
    })
}

fn notes(layout: &Layout, header: Option<&HeaderInfo>) -> Vec<String> {
    let mut notes = Vec::new();
    if layout.is_empty() {
        notes.push("empty: a database with no page written yet".into());
    }
    if let Some(j) = &layout.journal
        && j.hot
    {
        notes.push(
            "hot journal: a transaction was interrupted (or another process is writing right \
             now); the next read-write open rolls it back"
                .into(),
        );
    }
    if let Some(w) = &layout.wal
        && w.frames > 0
    {
        notes.push(format!(
            "a WAL with {} frames is not checkpointed: the file alone is not the whole database",
            w.frames
        ));
    }
    if layout.page_size > 0 && !layout.size.is_multiple_of(layout.page_size as u64) {
        notes.push(format!(
            "the size is not a whole number of pages ({} bytes past page {}): truncated or torn",
            layout.size % layout.page_size as u64,
            layout.pages()
        ));
    }
    if let Some(h) = header
        && u64::from(h.pages_in_header) > layout.pages()
    {
        notes.push(format!(
            "the header counts {} pages, the file holds {}",
            h.pages_in_header,
            layout.pages()
        ));
    }
    if !layout.layers.encrypted && layout.layers.checksums.is_none() && layout.reserve > 0 {
        notes.push(format!(
            "{} reserved bytes per page that no layer of this workspace uses",
            layout.reserve
        ));
    }
    notes
}

impl fmt::Display for InfoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let row =
            |f: &mut fmt::Formatter<'_>, k: &str, v: &dyn fmt::Display| writeln!(f, "{k:<14}{v}");
        row(f, "file", &self.file)?;
        row(f, "format", &self.format)?;
        if let Some(e) = &self.encryption {
            row(
                f,
                "encryption",
                &format!(
                    "{} (format version {}), {}, key check {}",
                    e.cipher, e.format_version, e.key_derivation, e.key_check
                ),
            )?;
        }
        if let Some(c) = &self.checksums {
            row(f, "checksums", c)?;
        }
        if self.size > 0 {
            row(f, "page size", &format!("{} bytes", self.page_size))?;
            row(f, "reserve", &format!("{} bytes per page", self.reserve))?;
            row(f, "pages", &format!("{} ({} bytes)", self.pages, self.size))?;
            row(f, "journal mode", &self.journal_mode)?;
        }
        if let Some(h) = &self.header {
            row(f, "encoding", &h.text_encoding)?;
            row(f, "user version", &h.user_version)?;
            if h.application_id != 0 {
                row(f, "application id", &format!("{:#x}", h.application_id))?;
            }
        }
        match &self.journal {
            Some(j) => row(
                f,
                "journal",
                &format!(
                    "{}: {} bytes{}",
                    j.path,
                    j.size,
                    if j.hot { ", hot" } else { ", not hot" }
                ),
            )?,
            None => row(f, "journal", &"none")?,
        }
        match &self.wal {
            Some(w) => row(
                f,
                "wal",
                &format!(
                    "{}: {} bytes, {} frames ({} commits) not checkpointed",
                    w.path, w.size, w.frames, w.commits
                ),
            )?,
            None => row(f, "wal", &"none")?,
        }
        for n in &self.notes {
            row(f, "note", n)?;
        }
        Ok(())
    }
}
