//! Read-only inspection for tools: what an encrypted database's clear parts
//! say without a key ([`EncryptionHeader`]), whether a key opens it, and the
//! authentication of its stored pages one by one outside SQLite
//! ([`PageOpener`]), so a damaged page can be named while SQLite itself
//! refuses the file. Nothing here writes.
//!
//! ```
//! use rusqlite::Connection;
//! use vfs_core::{Native, register};
//! use vfs_crypto::{Crypto, EncryptionHeader, Key, KeyDerivation, Secret};
//!
//! let reg = register("crypto-inspect-doc", Crypto::keyless(Native::new()?), false)?;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("secret.db");
//! let key = Key::generate();
//! let uri = format!("file:{}?vfs=crypto-inspect-doc&hexkey={}", path.display(), key.to_hex().as_str());
//! let conn = Connection::open(&uri).unwrap();
//! conn.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('hello');").unwrap();
//! drop(conn);
//!
//! let raw = std::fs::read(&path).unwrap();
//! let header = EncryptionHeader::parse(&raw)?;
//! assert_eq!(header.key_derivation, KeyDerivation::RawKey);
//! assert_eq!((header.page_size, header.reserve), (4096, 48));
//!
//! let mut opener = header.unlock(&Secret::Key(key))?;
//! let page1 = opener.open_page(1, &raw[..4096])?;
//! assert!(page1.starts_with(b"SQLite format 3\0"));
//! assert!(header.unlock(&Secret::Key(Key::generate())).is_err()); // wrong key
//! # reg.unregister().map_err(|(_, e)| e)?;
//! # Ok::<(), vfs_core::Error>(())
//! ```

use std::fmt;

use vfs_core::{Error, Result, codes};
use zeroize::Zeroizing;

use crate::derive::DbKeys;
use crate::format::{Class, Identity, Kdf, MAGIC, NONCE_AT, Place, SLICE, TAG_AT, associated_data};
use crate::gcm::{PageCipher, PageGcm};
use crate::key::{KdfParams, Key, argon2id};

/// How an encrypted database's master key is obtained (bytes 1–4 of every
/// page's descriptor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyDerivation {
    /// A raw 256-bit key (the `hexkey=` URI parameter, a registration key).
    RawKey,
    /// Argon2id over a passphrase with the database's salt, at this cost.
    Argon2id(KdfParams),
}

impl fmt::Display for KeyDerivation {
    /// The text `PRAGMA crypto_format` uses after the format name:
    /// `raw 256-bit key` or `argon2id m=<KiB> KiB t=<passes> p=<lanes>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kdf().describe())
    }
}

impl KeyDerivation {
    fn kdf(self) -> Kdf {
        match self {
            KeyDerivation::RawKey => Kdf::Raw,
            KeyDerivation::Argon2id(p) => Kdf::Argon2id(p),
        }
    }
}

/// A key to try on a database: a raw 256-bit key or a passphrase.
#[derive(Clone)]
pub enum Secret {
    /// A raw key (for databases created with `hexkey=` or a registration
    /// key).
    Key(Key),
    /// A passphrase (for databases created with `key=` / `textkey=`),
    /// zeroized when dropped.
    Passphrase(Zeroizing<Vec<u8>>),
}

impl Secret {
    /// A passphrase secret (copied; the copy is zeroized when dropped).
    pub fn passphrase(text: &str) -> Secret {
        Secret::Passphrase(Zeroizing::new(text.as_bytes().to_vec()))
    }

    fn kind(&self) -> &'static str {
        match self {
            Secret::Key(_) => "a raw key",
            Secret::Passphrase(_) => "a passphrase",
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(<{} redacted>)", self.kind())
    }
}

/// The clear parts of an encrypted database, read from its stored page 1
/// (see `docs/formats.md`): page size, reserve, and the descriptor every
/// page carries (format version, key derivation and cost, key check value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionHeader {
    /// Bytes per page (header bytes 16–17).
    pub page_size: usize,
    /// Reserved bytes per page (header byte 20): the crypto slice plus the
    /// slices of the layers below and above it.
    pub reserve: usize,
    /// Bytes at the end of each page that belong to page layers below
    /// encryption (stored in clear after the slice): 0 alone or under
    /// checksums, 8 over cksumvfs checksums, 12 over CRC-32.
    pub reserve_below: usize,
    /// Bytes of the reserve that belong to page layers above encryption
    /// (stored encrypted, before the slice): 8 or 12 under cksumvfs or
    /// CRC-32 checksums (`Cksm::new(Crypto::new(..))`), 0 otherwise.
    pub reserve_above: usize,
    /// The format version (descriptor byte 0).
    pub format_version: u8,
    /// How the master key is obtained.
    pub key_derivation: KeyDerivation,
    /// The 24-bit key check value.
    pub key_check: [u8; 3],
    /// The database's random salt (page-1 bytes 0–15).
    pub salt: [u8; 16],
}

fn not_encrypted(why: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(codes::SQLITE_NOTADB, why)
}

/// The page size in header bytes 16–17 (1 means 65536); `None` when it is
/// not a power of two from 512 to 65536.
fn header_page_size(head: &[u8]) -> Option<usize> {
    let raw = usize::from(u16::from_be_bytes([head[16], head[17]]));
    let n = if raw == 1 { 65536 } else { raw };
    ((512..=65536).contains(&n) && n.is_power_of_two()).then_some(n)
}

impl EncryptionHeader {
    /// Reads the clear parts of `stored`, the beginning of a database file
    /// as stored (at least its whole page 1). `SQLITE_NOTADB` with the
    /// reason when the file is not in this format: a plaintext SQLite
    /// database, too short, a page size or reserve the format cannot have,
    /// an unknown version or key derivation, Argon2id costs out of bounds.
    ///
    /// The slice is looked for where the workspace's stacks put it: first
    /// right after the content (encryption over every other page layer),
    /// then at the very end of the page (encryption under the others). A
    /// file whose page 1 holds a valid descriptor in both places is refused
    /// as ambiguous.
    pub fn parse(stored: &[u8]) -> Result<EncryptionHeader> {
        if stored.len() < 100 {
            return Err(not_encrypted(format!(
                "{} bytes: shorter than a database header",
                stored.len()
            )));
        }
        if stored[..16] == *MAGIC {
            return Err(not_encrypted(
                "a plaintext SQLite database, not an encrypted one",
            ));
        }
        let page_size = header_page_size(stored)
            .ok_or_else(|| not_encrypted("no valid page size in header bytes 16-17"))?;
        let reserve = usize::from(stored[20]);
        if page_size < crate::MIN_PAGE_SIZE || reserve < SLICE {
            return Err(not_encrypted(format!(
                "page size {page_size} with {reserve} reserved bytes cannot hold the \
                 {SLICE}-byte encryption slice"
            )));
        }
        if stored.len() < page_size {
            return Err(not_encrypted(format!(
                "{} bytes: shorter than page 1 ({page_size} bytes)",
                stored.len()
            )));
        }
        let at = |below: usize| {
            let at = page_size - below - SLICE;
            Identity::parse(&stored[..16], &stored[at..at + 8]).map(|ident| (below, ident))
        };
        let over_all = at(reserve - SLICE);
        let under_all = (reserve > SLICE).then(|| at(0));
        let (below, ident) = match (over_all, under_all) {
            (Ok(found), None | Some(Err(_))) | (Err(_), Some(Ok(found))) => found,
            (Err(why), None | Some(Err(_))) => return Err(not_encrypted(why)),
            (Ok(_), Some(Ok(_))) => {
                return Err(not_encrypted(format!(
                    "page 1 holds an encryption descriptor both after the content and at the \
                     end of the page ({reserve} reserved bytes): the layout is ambiguous"
                )));
            }
        };
        let key_derivation = match ident.kdf {
            Kdf::Raw => KeyDerivation::RawKey,
            Kdf::Argon2id(p) => KeyDerivation::Argon2id(p),
        };
        Ok(EncryptionHeader {
            page_size,
            reserve,
            reserve_below: below,
            reserve_above: reserve - SLICE - below,
            format_version: stored[page_size - below - SLICE],
            key_derivation,
            key_check: ident.kcv,
            salt: ident.salt,
        })
    }

    /// Where the crypto slice starts in every page.
    pub fn slice_offset(&self) -> usize {
        self.page_size - self.reserve_below - SLICE
    }

    fn identity(&self) -> Identity {
        Identity {
            version: self.format_version,
            salt: self.salt,
            kdf: self.key_derivation.kdf(),
            kcv: self.key_check,
        }
    }

    /// Checks `secret` against the key check value and returns what
    /// authenticates the database's pages. For a passphrase this runs
    /// Argon2id at the cost the file records (check
    /// [`key_derivation`](Self::key_derivation) first when the file is
    /// not trusted). `SQLITE_NOTADB` for a wrong key, or a raw key given
    /// for a passphrase database (and the reverse).
    pub fn unlock(&self, secret: &Secret) -> Result<PageOpener> {
        let master = match (secret, self.key_derivation) {
            (Secret::Key(k), KeyDerivation::RawKey) => Zeroizing::new(*k.as_bytes()),
            (Secret::Passphrase(p), KeyDerivation::Argon2id(params)) => {
                argon2id(p, &self.salt, params).map_err(not_encrypted)?
            }
            (given, wanted) => {
                return Err(not_encrypted(format!(
                    "this database's key is {}, but {} was given",
                    match wanted {
                        KeyDerivation::RawKey => "a raw 256-bit key",
                        KeyDerivation::Argon2id(_) => "a passphrase (Argon2id)",
                    },
                    given.kind()
                )));
            }
        };
        let keys = DbKeys::derive(&master, self.identity());
        if !keys.matches() {
            return Err(not_encrypted(format!(
                "wrong key: the key check value does not match this database's ({})",
                self.key_derivation
            )));
        }
        Ok(PageOpener {
            header: self.clone(),
            keys,
            last: None,
        })
    }
}

/// Authenticates and decrypts a database's stored pages with a key that
/// passed the key check ([`EncryptionHeader::unlock`]), as the crypto layer
/// does when SQLite reads them, one page at a time.
pub struct PageOpener {
    header: EncryptionHeader,
    keys: DbKeys,
    /// The cipher of the last nonce prefix (a handle encrypts up to 2^24
    /// pages under one prefix, so consecutive pages usually share it).
    last: Option<([u8; 12], PageGcm)>,
}

impl fmt::Debug for PageOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PageOpener")
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

impl PageOpener {
    /// The header this opener was unlocked for.
    pub fn header(&self) -> &EncryptionHeader {
        &self.header
    }

    /// Authenticates `stored`, page `pgno` (1-based) of the main database
    /// file exactly as stored, and returns its plaintext as SQLite reads it
    /// (page 1 with the header string back, the slice zeroed, the bytes of
    /// the layers below untouched). `SQLITE_IOERR_DATA` with the reason
    /// when it does not authenticate (damaged, or moved from another page
    /// or file); `SQLITE_MISUSE` when `stored` is not one page long.
    pub fn open_page(&mut self, pgno: u32, stored: &[u8]) -> Result<Vec<u8>> {
        let offset = u64::from(pgno.saturating_sub(1)) * self.header.page_size as u64;
        self.open_image(Class::Database, pgno, offset, stored)
    }

    /// Authenticates `stored`, the page image of a frame of the database's
    /// WAL for page `pgno` (from the frame's header), found at byte `offset`
    /// of the WAL file (the frame's start plus its 24-byte header), and
    /// returns its plaintext. Errors as [`open_page`](Self::open_page): an
    /// image moved to another frame, or a database page copied into the
    /// WAL, does not authenticate (version 2 binds the offset; version 1
    /// files bind the page number and the kind of file only).
    pub fn open_wal_frame(&mut self, pgno: u32, offset: u64, stored: &[u8]) -> Result<Vec<u8>> {
        self.open_image(Class::Wal, pgno, offset, stored)
    }

    fn open_image(
        &mut self,
        class: Class,
        pgno: u32,
        offset: u64,
        stored: &[u8],
    ) -> Result<Vec<u8>> {
        let n = self.header.page_size;
        if stored.len() != n || pgno == 0 {
            return Err(Error::new(
                codes::SQLITE_MISUSE,
                format!(
                    "page {pgno}: {} bytes given for a {n}-byte page",
                    stored.len()
                ),
            ));
        }
        let bad = |why: String| Error::new(codes::SQLITE_IOERR_DATA, why);
        let start = self.header.slice_offset();
        let mut image = stored.to_vec();
        let desc = self.keys.ident.descriptor();
        let (head, slice) = image.split_at_mut(start);
        let slice = &mut slice[..SLICE];
        if slice[..8] != desc {
            return Err(bad(if slice[0] != desc[0] {
                format!("unknown format version {} in the page's slice", slice[0])
            } else {
                "the page's descriptor is not this database's".into()
            }));
        }
        let mut n1 = [0u8; 12];
        n1.copy_from_slice(&slice[NONCE_AT..NONCE_AT + 12]);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&slice[NONCE_AT + 12..TAG_AT]);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&slice[TAG_AT..SLICE]);
        let (header, body) = if pgno == 1 {
            let (h, b) = head.split_at_mut(24);
            (Some(h), b)
        } else {
            (None, head)
        };
        let place = Place {
            class,
            page_size: n,
            pgno,
            offset,
            binding: [0; 16],
        };
        let (ad, ad_len) = associated_data(
            &desc,
            &self.keys.ident.salt,
            &place,
            header.as_deref().map(|h| &h[16..24]),
        );
        if self.last.as_ref().is_none_or(|(p, _)| *p != n1) {
            let gcm = PageGcm::new(PageCipher::RustCrypto, &self.keys.subkey(&n1));
            self.last = Some((n1, gcm));
        }
        let Some((_, gcm)) = &self.last else {
            return Err(Error::new(codes::SQLITE_INTERNAL, "no cipher"));
        };
        if !gcm.open(&nonce, &ad[..ad_len], body, &tag) {
            return Err(bad(format!(
                "{} page {pgno} does not authenticate (damaged, or moved from another place or file)",
                class.name()
            )));
        }
        if let Some(h) = header {
            h[..16].copy_from_slice(MAGIC);
        }
        slice.fill(0);
        Ok(image)
    }
}
