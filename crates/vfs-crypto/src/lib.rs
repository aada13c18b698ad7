//! # vfs-crypto
//!
//! Authenticated encryption at rest for SQLite over any base VFS (the disk,
//! an in-memory store, a checksum layer, any Rust backend), from any
//! binding (rusqlite, sqlx, diesel, the C API) and an unpatched SQLite.
//!
//! [`Crypto<B>`](Crypto) is a page transform on the shared page-mapping
//! layer ([`vfs_page`]). Every page image is encrypted with
//! XAES-256-GCM (AES-256-GCM with 192-bit nonces, on AWS-LC's AES-256-GCM
//! by default or RustCrypto's `aes-gcm`; each file handle reuses one
//! derived AES-256-GCM key schedule for up to 2^24 pages, and the result is
//! checked against RustCrypto's `xaes-256-gcm`) wherever it lands:
//!
//! * main database pages, WAL frames and rollback-journal records: a random
//!   nonce and the tag live in 48 reserved bytes at the end of each page;
//!   the associated data binds the format, the database's random salt, the
//!   kind of file (database, WAL, journal), the page number, the page size
//!   and the offset, and journal records to their journal and the state of
//!   the database it may roll back, so a page cannot be swapped, moved to
//!   another file of the same or another database, or moved between the
//!   WAL and the database, and a stale journal is not played back;
//! * the checksums SQLite computes over plaintext (WAL frame headers,
//!   journal records) are masked with a key-derived pad, new for every WAL
//!   generation and every journal;
//! * temporary databases, temporary journals, sort files and statement
//!   sub-journals (which have no reserved bytes) are encrypted
//!   length-preservingly with AES-256-CTR under a random key that lives only
//!   as long as the file is open.
//!
//! Page 1 keeps its bytes 16..24 (page size, versions, reserve) in clear and
//! authenticated; its bytes 0..16 hold the database's salt instead of
//! `"SQLite format 3"`. The format (version [`FORMAT_VERSION`]; version 1
//! databases are still read and written), the key derivation and the
//! threat model (what is and is not protected) are in `docs/formats.md`.
//!
//! What the storage holds is never trusted: a journal or WAL planted next
//! to a database, in clear or from another database, is refused or treated
//! as torn; recovery treats a record or frame as torn only under the keys
//! page 1 authenticated under; a database's identity is that of its page 1
//! as authenticated, shared by the files one connection opened for it, not
//! by path; the Argon2id cost a file asks for is capped
//! ([`CryptoOptions::kdf_limit`]).
//!
//! ## Keys
//!
//! * At registration: [`Crypto::new`]`(base, key)`: every database opened
//!   without a key of its own uses it.
//! * Per database, in the URI: `hexkey=<64 hex digits>` (a raw 256-bit
//!   key), or `key=<passphrase>` / `textkey=<passphrase>` (Argon2id with
//!   the database's salt; cost parameters in [`KdfParams`], recorded in the
//!   file, at most [`CryptoOptions::kdf_limit`]). The WAL and journal of a
//!   database use its key.
//! * A missing or wrong key opens the connection but fails its first read
//!   with `SQLITE_NOTADB` ("file is not a database"); a damaged or moved
//!   page answers `SQLITE_IOERR_DATA`. The reason is in
//!   [`vfs_core::last_error`] and SQLite's error log. Never garbage.
//!
//! ```
//! use rusqlite::Connection;
//! use vfs_core::{Native, register};
//! use vfs_crypto::Crypto;
//!
//! // Keys come from each database's URI.
//! let reg = register("crypto-doc", Crypto::keyless(Native::new()?), false)?;
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("secret.db");
//! let hexkey = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
//! let uri = format!("file:{}?vfs=crypto-doc&hexkey={hexkey}", path.display());
//!
//! let conn = Connection::open(&uri).unwrap();
//! conn.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('attack at dawn');").unwrap();
//! drop(conn);
//!
//! // Encrypted from its first byte: no header string, no plaintext.
//! let raw = std::fs::read(&path).unwrap();
//! assert!(!raw.starts_with(b"SQLite format 3"));
//! assert!(!raw.windows(14).any(|w| w == b"attack at dawn"));
//!
//! // The right key reads it back; a wrong one is "not a database".
//! let conn = Connection::open(&uri).unwrap();
//! let v: String = conn.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
//! assert_eq!(v, "attack at dawn");
//! let wrong = Connection::open(uri.replace("&hexkey=00", "&hexkey=ff")).unwrap();
//! let err = wrong.query_row("SELECT v FROM t", [], |r| r.get::<_, String>(0)).unwrap_err();
//! assert_eq!(err.sqlite_error_code(), Some(rusqlite::ErrorCode::NotADatabase));
//! # drop((conn, wrong));
//! # reg.unregister().map_err(|(_, e)| e)?;
//! # Ok::<(), vfs_core::Error>(())
//! ```
//!
//! ## New and existing databases
//!
//! A new database opened through a crypto VFS is encrypted from its first
//! page with no extra call: the page layer's connection hook requests the
//! reserved bytes. An existing plaintext database is encrypted, an
//! encrypted one rekeyed or decrypted, by one copy: [`encrypt_database`],
//! [`rekey_database`], [`decrypt_database`] (or, from a connection the
//! application has open, `VACUUM INTO ?1` with [`vacuum_into_target`]; in SQL, `VACUUM INTO 'file:new.db?vfs=crypto&hexkey=...&reserve=48'`).
//!
//! ## Stacking
//!
//! Page layers compose by plain nesting, with `Wrap` or any forwarding shim
//! at any level: each layer learns from its base the reserved bytes the
//! layers beneath it claim ([`vfs_core::Vfs::page_layers`]), and
//! [`register`](vfs_core::register) refuses a stack that cannot work.
//!
//! The documented default stack is crypto over cksm over the base:
//! checksums cover the ciphertext, so damage is reported as damage by the
//! checksum layer. cksm's trailer is the page's last 8 bytes, crypto's
//! 48-byte slice sits right before it, and the header's reserve is 56.
//!
//! ```
//! use vfs_cksm::Cksm;
//! use vfs_crypto::{Crypto, Key};
//! use vfs_memdb::MemDb;
//!
//! let secure = Crypto::new(Cksm::new(MemDb::new()), Key::generate());
//! assert_eq!(secure.reserve(), 56);
//! let reg = vfs_core::register("secure-doc", secure, false)?;
//! let conn = rusqlite::Connection::open("file:/s.db?vfs=secure-doc").unwrap();
//! conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
//! let format: String = conn.query_row("PRAGMA checksum_format", [], |r| r.get(0)).unwrap();
//! assert_eq!(format, "cksumvfs");
//! # drop(conn);
//! # reg.unregister().map_err(|(_, e)| e)?;
//! # Ok::<(), vfs_core::Error>(())
//! ```
//!
//! The other order, `Cksm::new(Crypto::new(base, key))`, checksums the
//! plaintext and stores the trailer encrypted (cksm's 8 bytes, then
//! crypto's slice at the end of each page; also a reserve of 56). The two
//! orders cannot read each other's files (an error, never garbage);
//! `docs/formats.md` has every layout.
//!
//! ## Speed: choosing the AES-256-GCM implementation
//!
//! Nearly all of this layer's cost is AES-256-GCM itself. The default
//! cipher, [`PageCipher::AwsLc`] (crate feature `aws-lc`, on by default),
//! is AWS-LC's assembly through `aws-lc-rs` (AES-NI/VAES and carry-less
//! multiplication), several times faster per page than RustCrypto's
//! `aes-gcm` ([`PageCipher::RustCrypto`], pure Rust, the default when the
//! feature is off); `docs/performance.md` has the figures. Both keep the
//! promise that key schedules do not outlive their use: RustCrypto's are
//! zeroized on drop, AWS-LC's contexts are cleansed by AWS-LC's own `free`.
//! Building AWS-LC needs a C compiler (on x86-64 Linux nothing else: no
//! cmake, nasm or bindgen). With the crate feature `ring`,
//! [`PageCipher::Ring`] is `ring`'s assembly, about as fast, but `ring`
//! does not zeroize the AES key schedules it keeps (master and derived key
//! bytes still are). The bytes written are identical, so every cipher
//! reads what the others wrote.
//!
//! ```
//! # #[cfg(feature = "ring")] {
//! use vfs_crypto::{Crypto, CryptoOptions, Key, PageCipher};
//! let crypto = Crypto::with_options(
//!     vfs_memdb::MemDb::new(),
//!     CryptoOptions {
//!         key: Some(Key::generate()),
//!         cipher: PageCipher::Ring,
//!         ..CryptoOptions::default()
//!     },
//! );
//! let _reg = vfs_core::register("fast-secure", crypto, false).unwrap();
//! let conn = rusqlite::Connection::open("file:/f.db?vfs=fast-secure").unwrap();
//! conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
//! # }
//! ```
//!
//! ## SQL
//!
//! * `PRAGMA crypto_format` answers `xaes-256-gcm v2, <key derivation>` for
//!   an encrypted main database, `none` otherwise.
//! * `PRAGMA key`, `rekey`, `hexkey`, … (SQLCipher's) fail with a message
//!   pointing to the URI parameters and [`rekey_database`].
//!
//! The page size must be at least 1024 bytes (SQLite needs 480 usable
//! bytes per page). Memory mapping is off for encrypted files (the page
//! layer offers no `xFetch`).

#![forbid(unsafe_code)]

mod codec;
mod copy;
mod derive;
mod format;
mod gcm;
mod image;
mod inspect;
mod key;
mod page1;
mod pragma;
mod session;
mod shared;
mod temp;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use vfs_core::{OpenName, OpenOptions, Result, Vfs};
use vfs_page::{PageFile, PageVfs};

pub use codec::{CryptoCodec, CryptoOptions, CryptoState, CryptoStats};
pub use copy::{decrypt_database, encrypt_database, rekey_database, vacuum_into_target};
pub use format::{FORMAT_VERSION, MIN_PAGE_SIZE, SLICE};
pub use gcm::PageCipher;
pub use inspect::{EncryptionHeader, KeyDerivation, PageOpener, Secret};
pub use key::{KdfParams, Key};

/// The reserved bytes per page of a new database when crypto is used alone
/// (its slice: descriptor, nonce, tag).
pub const RESERVE: usize = SLICE;

/// The encryption shim: a [`Vfs`] over base `B`. See the [crate docs](crate).
pub struct Crypto<B: Vfs> {
    inner: PageVfs<B, CryptoCodec>,
}

impl<B: Vfs + fmt::Debug> fmt::Debug for Crypto<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crypto")
            .field("base", self.inner.base())
            .field("codec", self.inner.codec())
            .finish()
    }
}

impl<B: Vfs> Crypto<B> {
    /// Encryption over `base` with a registration key: databases opened
    /// without a key in their URI use `key`.
    pub fn new(base: B, key: Key) -> Self {
        Crypto::with_options(
            base,
            CryptoOptions {
                key: Some(key),
                ..CryptoOptions::default()
            },
        )
    }

    /// Encryption over `base` without a registration key: every database
    /// must give its key in its URI (`hexkey=` or `key=`).
    pub fn keyless(base: B) -> Self {
        Crypto::with_options(base, CryptoOptions::default())
    }

    /// The general constructor.
    pub fn with_options(base: B, opts: CryptoOptions) -> Self {
        Crypto {
            inner: PageVfs::new(base, CryptoCodec::new(opts)),
        }
    }

    /// The reserved bytes per page of a new database opened through this
    /// VFS: this layer's slice plus the slices of the page layers below it
    /// (layers stacked above add theirs).
    pub fn reserve(&self) -> usize {
        self.inner.page_layers().reserve()
    }

    /// The codec (its [`stats`](CryptoCodec::stats)).
    pub fn codec(&self) -> &Arc<CryptoCodec> {
        self.inner.codec()
    }

    /// The base VFS.
    pub fn base(&self) -> &B {
        self.inner.base()
    }
}

impl<B: Vfs> Vfs for Crypto<B> {
    type File = PageFile<B::File, CryptoCodec>;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
        self.inner.open(name, opts)
    }
    vfs_core::forward_vfs!(inner);
}
