//! The page codec plugged into `vfs_page`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use aes::Aes256;
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use parking_lot::Mutex;
use rand::RngCore;
use vfs_core::{
    Control, Error, FileControl, FileKind, FileName, FileNameBuf, OpenName, OpenOptions, Result,
    codes,
};
use vfs_page::{Direction, FileInfo, FileStatus, Mapping, PageCodec, PageCtx, Stacking, StreamCtx};
use zeroize::Zeroizing;

use crate::format::{
    Class, DbKeys, Identity, Kdf, MAGIC, MIN_PAGE_SIZE, NONCE_AT, SLICE, TAG_AT, associated_data,
};
use crate::gcm::{PageCipher, PageGcm};
use crate::key::{KdfParams, Key, KeySource, argon2id};

/// Settings of a crypto layer.
#[derive(Clone, Debug, Default)]
pub struct CryptoOptions {
    /// The key of every database opened without a key in its URI (`None`:
    /// a URI key is required).
    pub key: Option<Key>,
    /// Argon2id cost for new passphrase (`key=`) databases.
    pub kdf: KdfParams,
    /// The AES-256-GCM implementation ([`PageCipher::RustCrypto`] unless
    /// chosen otherwise; the format is the same either way).
    pub cipher: PageCipher,
}

/// Counters of one crypto layer (all its files).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CryptoStats {
    /// Page images encrypted (database pages, WAL frames, journal records).
    pub pages_encrypted: u64,
    /// Page images decrypted and authenticated.
    pub pages_decrypted: u64,
    /// Page images that failed authentication, or were read with a wrong
    /// or missing key.
    pub failures: u64,
    /// Bytes of temporary files encrypted or decrypted (AES-CTR).
    pub temp_bytes: u64,
}

/// The encryption codec: a [`PageCodec`] for
/// [`PageVfs`](vfs_page::PageVfs). Most users want
/// [`Crypto`](crate::Crypto), which wraps it.
pub struct CryptoCodec {
    key: Option<Key>,
    kdf: KdfParams,
    cipher: PageCipher,
    dbs: Mutex<HashMap<FileNameBuf, Weak<DbShared>>>,
    encrypted: AtomicU64,
    decrypted: AtomicU64,
    failures: AtomicU64,
    temp_bytes: AtomicU64,
}

impl std::fmt::Debug for CryptoCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoCodec")
            .field("registration_key", &self.key.is_some())
            .field("kdf", &self.kdf)
            .finish()
    }
}

/// What the handles of one database (main file, journal, WAL) share: its
/// identity, the passphrase derivations already done, and the keys derived
/// from them (so a journal opened for each transaction costs no key
/// derivation).
#[derive(Default)]
struct DbShared {
    ident: Mutex<Option<Identity>>,
    /// Bumped whenever `ident` changes.
    generation: AtomicU64,
    kdf_cache: Mutex<Vec<KdfEntry>>,
    derived: Mutex<Vec<Derived>>,
}

/// Keys derived from one master key for one identity.
struct Derived {
    master: Zeroizing<[u8; 32]>,
    keys: Arc<DbKeys>,
}

/// One Argon2id result, kept so a journal or WAL (or another connection
/// with the same passphrase) does not pay for the derivation again.
struct KdfEntry {
    passphrase: Zeroizing<Vec<u8>>,
    salt: [u8; 16],
    params: KdfParams,
    master: Zeroizing<[u8; 32]>,
}

/// Derivations kept per database (a few keys: the right one, wrong ones
/// tried by other connections).
const KDF_CACHE: usize = 4;

/// Pushes `item`, dropping the oldest entry past [`KDF_CACHE`].
fn push_bounded<T>(v: &mut Vec<T>, item: T) {
    if v.len() >= KDF_CACHE {
        v.remove(0);
    }
    v.push(item);
}

impl DbShared {
    fn identity(&self) -> Option<Identity> {
        self.ident.lock().clone()
    }

    /// Records the identity read from the stored page 1.
    fn learn(&self, ident: Identity) {
        let mut g = self.ident.lock();
        if g.as_ref() != Some(&ident) {
            *g = Some(ident);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Per-file state of the crypto codec.
pub struct CryptoState {
    inner: Inner,
}

impl std::fmt::Debug for CryptoState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            Inner::Pages(p) => f
                .debug_struct("CryptoState")
                .field("class", &p.class)
                .field("key", &p.source.origin())
                .finish(),
            Inner::Stream(_) => f
                .debug_struct("CryptoState")
                .field("stream", &"ephemeral AES-256-CTR")
                .finish(),
        }
    }
}

enum Inner {
    Pages(Box<PageState>),
    Stream(Box<Ctr128BE<Aes256>>),
}

struct PageState {
    class: Class,
    source: KeySource,
    db: Arc<DbShared>,
    keys: Option<Arc<DbKeys>>,
    /// The `db.generation` `keys` are current for.
    keys_gen: u64,
    /// Main database: the last page 1 decoded or encoded.
    page1: Option<Page1>,
    /// AES-256-GCM instances derived from `keys`.
    ciphers: Ciphers,
    /// WAL: the frame header whose checksum was decoded last in the current
    /// read (a whole-frame read: recovery).
    frame_header_at: Option<u64>,
    /// Journal: the end of the records this handle wrote.
    own_end: u64,
}

/// Encryptions under one XAES-derived key before a handle draws a new
/// 96-bit key-derivation nonce: with random 96-bit GCM nonces, 2^24
/// messages per key collide with probability below 2^-49.
const SESSION_LIMIT: u32 = 1 << 24;

/// Derived keys a handle keeps for decryption.
const RECENT: usize = 4;

/// The AES-256-GCM instances a handle uses: XAES-256-GCM derives a key
/// from the first 12 bytes of each 24-byte nonce. A handle encrypts with
/// one random 12-byte prefix (its session) for up to [`SESSION_LIMIT`]
/// pages, so the key schedule runs once per session instead of once per
/// page; the stored nonce is still a 192-bit XAES-256-GCM nonce, decrypted
/// by any XAES-256-GCM implementation.
struct Ciphers {
    cipher: PageCipher,
    session: Option<Session>,
    recent: Vec<([u8; 12], PageGcm)>,
}

struct Session {
    n1: [u8; 12],
    gcm: PageGcm,
    used: u32,
}

impl Ciphers {
    fn new(cipher: PageCipher) -> Ciphers {
        Ciphers {
            cipher,
            session: None,
            recent: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.session = None;
        self.recent.clear();
    }

    /// The session's prefix and cipher, counting one more encryption.
    fn for_encrypt(&mut self, keys: &DbKeys) -> (&[u8; 12], &PageGcm) {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.used >= SESSION_LIMIT)
        {
            self.session = None;
        }
        let s = self.session.get_or_insert_with(|| {
            let mut n1 = [0u8; 12];
            rand::thread_rng().fill_bytes(&mut n1);
            Session {
                gcm: PageGcm::new(self.cipher, &keys.subkey(&n1)),
                n1,
                used: 0,
            }
        });
        s.used += 1;
        (&s.n1, &s.gcm)
    }

    /// The cipher for nonces starting with `n1`.
    fn for_decrypt(&mut self, keys: &DbKeys, n1: &[u8; 12]) -> &PageGcm {
        if let Some(s) = &self.session
            && s.n1 == *n1
        {
            return &s.gcm;
        }
        let at = match self.recent.iter().position(|(n, _)| n == n1) {
            Some(i) => i,
            None => {
                if self.recent.len() >= RECENT {
                    self.recent.remove(0);
                }
                self.recent
                    .push((*n1, PageGcm::new(self.cipher, &keys.subkey(n1))));
                self.recent.len() - 1
            }
        };
        &self.recent[at].1
    }
}

/// Page 1 as this handle last wrote or authenticated it: the stored bytes
/// (through the end of this layer's slice; bytes below belong to the
/// layers below, which check them) and the plaintext they decode to. A
/// stored page 1 equal to `stored` decodes to `plain` without decrypting
/// again; any other byte, a tampered one included, fails the comparison
/// and is decrypted and authenticated. SQLite reads page 1's change
/// counter at the start of every rollback-mode transaction; this spares a
/// decryption each time (a 4 KiB comparison costs about a twentieth).
struct Page1 {
    stored: Vec<u8>,
    plain: Vec<u8>,
}

impl Page1 {
    fn matches(&self, stored: &[u8], slice_end: usize) -> bool {
        self.plain.len() == stored.len() && stored[..slice_end] == self.stored[..]
    }

    fn empty() -> Page1 {
        Page1 {
            stored: Vec::new(),
            plain: Vec::new(),
        }
    }
}

/// How a page failed to decode.
enum Fail {
    /// Key or format problem: always an error.
    Hard(Error),
    /// The image does not authenticate (damaged, torn, moved, replayed
    /// from elsewhere).
    Auth(String),
}

impl PageState {
    /// The master key for `ident` from this file's key source.
    fn master(&self, ident: &Identity) -> Result<Zeroizing<[u8; 32]>> {
        let notadb = |m: String| Error::new(codes::SQLITE_NOTADB, m);
        match (&self.source, ident.kdf) {
            (KeySource::Missing(why), _) => Err(notadb(why.clone())),
            (KeySource::Raw { key, .. }, Kdf::Raw) => Ok(key.clone()),
            (KeySource::Raw { origin, .. }, Kdf::Argon2id(_)) => Err(notadb(format!(
                "this database is protected by a passphrase (open it with ?key=...), but \
                 {origin} is a raw key"
            ))),
            (KeySource::Passphrase { origin, .. }, Kdf::Raw) => Err(notadb(format!(
                "this database is encrypted with a raw 256-bit key (?hexkey=... or the \
                 registration key), but {origin} is a passphrase"
            ))),
            (KeySource::Passphrase { text, .. }, Kdf::Argon2id(params)) => {
                {
                    let cache = self.db.kdf_cache.lock();
                    if let Some(e) = cache.iter().find(|e| {
                        e.salt == ident.salt && e.params == params && *e.passphrase == **text
                    }) {
                        return Ok(e.master.clone());
                    }
                }
                let master = argon2id(text, &ident.salt, params)
                    .map_err(|m| Error::new(codes::SQLITE_NOTADB, m))?;
                push_bounded(
                    &mut self.db.kdf_cache.lock(),
                    KdfEntry {
                        passphrase: text.clone(),
                        salt: ident.salt,
                        params,
                        master: master.clone(),
                    },
                );
                Ok(master)
            }
        }
    }

    /// The keys for the database's current identity (derived once per
    /// database and key, then shared by its files). Does not check that
    /// the key is the right one.
    fn keys(&mut self) -> Result<&DbKeys> {
        let generation = self.db.generation.load(Ordering::Acquire);
        if self.keys.is_none() || self.keys_gen != generation {
            let Some(ident) = self.db.identity() else {
                return Err(Error::new(
                    codes::SQLITE_NOTADB,
                    "the database's encryption header (page 1) has not been read",
                ));
            };
            if self.keys.as_ref().is_none_or(|k| k.ident != ident) {
                let master = self.master(&ident)?;
                self.keys = Some(self.derived(master, ident));
                self.ciphers.clear();
            }
            self.keys_gen = generation;
        }
        self.keys
            .as_deref()
            .ok_or_else(|| Error::new(codes::SQLITE_INTERNAL, "keys missing after a derivation"))
    }

    /// The keys of `master` for `ident`, from the database's cache or
    /// derived now.
    fn derived(&self, master: Zeroizing<[u8; 32]>, ident: Identity) -> Arc<DbKeys> {
        let mut derived = self.db.derived.lock();
        if let Some(d) = derived
            .iter()
            .find(|d| *d.master == *master && d.keys.ident == ident)
        {
            return d.keys.clone();
        }
        let keys = Arc::new(DbKeys::derive(&master, ident));
        push_bounded(
            &mut derived,
            Derived {
                master,
                keys: keys.clone(),
            },
        );
        keys
    }

    /// The keys, checked against the database's key check value.
    fn checked_keys(&mut self) -> Result<&DbKeys> {
        let origin = self.source.origin();
        let keys = self.keys()?;
        if !keys.matches() {
            return Err(Error::new(
                codes::SQLITE_NOTADB,
                format!(
                    "wrong key: the key check value of {origin} does not match this \
                     database's ({})",
                    keys.ident.kdf.describe()
                ),
            ));
        }
        self.keys
            .as_deref()
            .ok_or_else(|| Error::new(codes::SQLITE_INTERNAL, "keys missing after a derivation"))
    }

    /// Makes sure the database has an identity, creating one (a fresh salt)
    /// for a new database.
    fn ensure_identity(&mut self, kdf_params: KdfParams) -> Result<()> {
        if self.keys.is_some() && self.keys_gen == self.db.generation.load(Ordering::Acquire)
            || self.db.identity().is_some()
        {
            return Ok(());
        }
        let kdf = match &self.source {
            KeySource::Raw { .. } => Kdf::Raw,
            KeySource::Passphrase { .. } => Kdf::Argon2id(kdf_params),
            KeySource::Missing(why) => {
                return Err(Error::new(codes::SQLITE_NOTADB, why.clone()));
            }
        };
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let draft = Identity {
            salt,
            kdf,
            kcv: [0; 3],
        };
        let master = self.master(&draft)?;
        let probe = DbKeys::derive(&master, draft.clone());
        let ident = Identity {
            kcv: probe.kcv,
            ..draft
        };
        let mut g = self.db.ident.lock();
        if g.is_none() {
            *g = Some(ident);
            self.db.generation.fetch_add(1, Ordering::AcqRel);
        }
        Ok(())
    }
}

impl CryptoCodec {
    /// A codec with these options.
    pub fn new(opts: CryptoOptions) -> CryptoCodec {
        CryptoCodec {
            key: opts.key,
            kdf: opts.kdf,
            cipher: opts.cipher,
            dbs: Mutex::new(HashMap::new()),
            encrypted: AtomicU64::new(0),
            decrypted: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            temp_bytes: AtomicU64::new(0),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> CryptoStats {
        CryptoStats {
            pages_encrypted: self.encrypted.load(Ordering::Relaxed),
            pages_decrypted: self.decrypted.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            temp_bytes: self.temp_bytes.load(Ordering::Relaxed),
        }
    }

    fn shared(&self, db: Option<&FileName>) -> Arc<DbShared> {
        let Some(db) = db else {
            return Arc::new(DbShared::default());
        };
        let mut map = self.dbs.lock();
        if let Some(s) = map.get(db).and_then(Weak::upgrade) {
            return s;
        }
        map.retain(|_, w| w.strong_count() > 0);
        let s = Arc::new(DbShared::default());
        map.insert(db.to_owned(), Arc::downgrade(&s));
        s
    }

    /// The reserve a database needs for this layer and those below it (the
    /// slices of layers above, if any, sit before the slice, inside what it
    /// encrypts: a larger reserve is fine).
    fn needed(stacking: Stacking) -> usize {
        SLICE + stacking.below
    }

    fn class(kind: FileKind) -> Class {
        match kind {
            FileKind::Wal => Class::Wal,
            FileKind::MainJournal => Class::Journal,
            _ => Class::Database,
        }
    }

    /// Checks the page can hold the slice; the slice's start.
    fn slice_start(&self, ctx: &PageCtx<'_>) -> std::result::Result<usize, String> {
        let n = ctx.page_size;
        if n < MIN_PAGE_SIZE {
            return Err(format!(
                "{n}-byte pages are too small to encrypt (at least {MIN_PAGE_SIZE} bytes)"
            ));
        }
        let needed = Self::needed(ctx.stacking);
        if needed > n - SLICE {
            return Err(format!(
                "{n}-byte pages cannot hold the {needed} reserved bytes of this stack"
            ));
        }
        if let Some(r) = ctx.reserve
            && r < needed
        {
            return Err(format!(
                "the database reserves {r} bytes per page; encryption needs at least {needed}"
            ));
        }
        Ok(ctx.stacking.slice(n, SLICE).start)
    }

    fn encode_page(&self, st: &mut PageState, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        let start = self.slice_start(ctx).map_err(|why| {
            Error::new(
                codes::SQLITE_IOERR_WRITE,
                format!(
                    "{why}: new databases get the reserve automatically on their own \
                     connection; for VACUUM INTO add &reserve={} to the target URI (or use \
                     vfs_crypto::vacuum_into_target), for an ATTACHed database set \
                     SQLITE_FCNTL_RESERVE_BYTES to {} before its first write",
                    ctx.stacking.total(SLICE),
                    ctx.stacking.total(SLICE)
                ),
            )
        })?;
        if ctx.pgno == 1 && image[..16] != *MAGIC {
            return Err(Error::new(
                codes::SQLITE_IOERR_WRITE,
                "page 1 does not start with the SQLite header string",
            ));
        }
        if ctx.kind == FileKind::MainDb
            && ctx.stored_reserve.is_some()
            && st.keys.is_none()
            && st.db.identity().is_none()
        {
            return Err(Error::new(
                codes::SQLITE_IOERR_WRITE,
                "page written to an existing encrypted database before its header was read",
            ));
        }
        st.ensure_identity(self.kdf)?;
        let main_page_1 = ctx.kind == FileKind::MainDb && ctx.pgno == 1;
        // Keep the plaintext of page 1 as a decode would give it back (a
        // write of another page leaves the kept page 1 alone).
        let mut page1 = if main_page_1 { st.page1.take() } else { None };
        if main_page_1 {
            let p = page1.get_or_insert_with(Page1::empty);
            p.plain.clear();
            p.plain.extend_from_slice(image);
            p.plain[start..start + SLICE].fill(0);
        }
        let class = st.class;
        st.checked_keys()?;
        let (Some(keys), ciphers) = (st.keys.as_deref(), &mut st.ciphers) else {
            return Err(Error::new(
                codes::SQLITE_INTERNAL,
                "keys missing after a check",
            ));
        };
        let desc = keys.ident.descriptor();
        let salt = keys.ident.salt;
        let (head, slice) = image.split_at_mut(start);
        let slice = &mut slice[..SLICE];
        slice[..8].copy_from_slice(&desc);
        let (n1, gcm) = ciphers.for_encrypt(keys);
        slice[NONCE_AT..NONCE_AT + 12].copy_from_slice(n1);
        rand::thread_rng().fill_bytes(&mut slice[NONCE_AT + 12..TAG_AT]);
        let nonce: [u8; 12] = slice[NONCE_AT + 12..TAG_AT]
            .try_into()
            .map_err(|_| Error::new(codes::SQLITE_INTERNAL, "nonce length"))?;
        let (header, body) = if ctx.pgno == 1 {
            let (h, b) = head.split_at_mut(24);
            h[..16].copy_from_slice(&salt);
            (Some(&h[16..24]), b)
        } else {
            (None, head)
        };
        let ad = associated_data(&desc, &salt, class, ctx.page_size, ctx.pgno, header);
        let tag = gcm
            .seal(&nonce, &ad, body)
            .ok_or_else(|| Error::new(codes::SQLITE_IOERR_WRITE, "page too large to encrypt"))?;
        slice[TAG_AT..].copy_from_slice(&tag);
        if let Some(mut p) = page1 {
            p.stored.clear();
            p.stored.extend_from_slice(&image[..start + SLICE]);
            st.page1 = Some(p);
        }
        if ctx.kind == FileKind::MainJournal {
            st.own_end = st.own_end.max(ctx.offset + ctx.page_size as u64);
        }
        self.encrypted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    fn decode_page(
        &self,
        st: &mut PageState,
        ctx: &PageCtx<'_>,
        image: &mut [u8],
    ) -> std::result::Result<(), Fail> {
        let hard = |code: i32, m: String| Fail::Hard(Error::new(code, m));
        let main_page_1 = ctx.kind == FileKind::MainDb && ctx.pgno == 1;
        let start = match self.slice_start(ctx) {
            Ok(s) => s,
            Err(why) => {
                let plain = main_page_1 && image[..16] == *MAGIC;
                return Err(hard(
                    codes::SQLITE_NOTADB,
                    if plain {
                        format!(
                            "this is a plaintext SQLite database, not an encrypted one ({why}); \
                             encrypt a copy with vfs_crypto::encrypt_database"
                        )
                    } else {
                        format!("not an encrypted database: {why}")
                    },
                ));
            }
        };
        if main_page_1 {
            if let Some(p) = &st.page1
                && p.matches(image, start + SLICE)
            {
                image.copy_from_slice(&p.plain);
                return Ok(());
            }
            // The stored page 1 names the database's salt and key
            // derivation, readable before any key is tried.
            match Identity::parse(&image[..16], &image[start..start + 8]) {
                Ok(ident) => st.db.learn(ident),
                Err(why) => {
                    let plain = image[..16] == *MAGIC;
                    return Err(hard(
                        codes::SQLITE_NOTADB,
                        if plain {
                            "this is a plaintext SQLite database, not an encrypted one; \
                             encrypt a copy with vfs_crypto::encrypt_database"
                                .into()
                        } else {
                            format!("not a database in this encryption format: {why}")
                        },
                    ));
                }
            }
        }
        // The stored bytes of page 1, kept if it authenticates.
        let page1 = main_page_1.then(|| {
            let mut p = st.page1.take().unwrap_or_else(Page1::empty);
            p.stored.clear();
            p.stored.extend_from_slice(&image[..start + SLICE]);
            p
        });
        let class = st.class;
        st.checked_keys().map_err(Fail::Hard)?;
        let (Some(keys), ciphers) = (st.keys.as_deref(), &mut st.ciphers) else {
            return Err(hard(
                codes::SQLITE_INTERNAL,
                "keys missing after a check".into(),
            ));
        };
        let desc = keys.ident.descriptor();
        let (head, slice) = image.split_at_mut(start);
        let slice = &mut slice[..SLICE];
        if slice[..8] != desc {
            return Err(Fail::Auth(if slice[0] != desc[0] {
                format!("unknown format version {} in the page's slice", slice[0])
            } else {
                "the page's descriptor is not this database's".into()
            }));
        }
        let mut n1 = [0u8; 12];
        n1.copy_from_slice(&slice[NONCE_AT..NONCE_AT + 12]);
        let nonce: [u8; 12] = slice[NONCE_AT + 12..TAG_AT]
            .try_into()
            .map_err(|_| hard(codes::SQLITE_INTERNAL, "nonce length".into()))?;
        let tag: [u8; 16] = slice[TAG_AT..]
            .try_into()
            .map_err(|_| hard(codes::SQLITE_INTERNAL, "tag length".into()))?;
        let (header, body) = if ctx.pgno == 1 {
            let (h, b) = head.split_at_mut(24);
            (Some(&mut h[..]), b)
        } else {
            (None, head)
        };
        let ad = associated_data(
            &desc,
            &keys.ident.salt,
            class,
            ctx.page_size,
            ctx.pgno,
            header.as_ref().map(|h| &h[16..24]),
        );
        if !ciphers.for_decrypt(keys, &n1).open(&nonce, &ad, body, &tag) {
            return Err(Fail::Auth(format!(
                "the {} page does not authenticate (damaged, or moved from another place \
                 or file)",
                class.name()
            )));
        }
        if let Some(h) = header {
            h[..16].copy_from_slice(MAGIC);
        }
        slice.fill(0);
        self.decrypted.fetch_add(1, Ordering::Relaxed);
        if let Some(mut p) = page1 {
            p.plain.clear();
            p.plain.extend_from_slice(image);
            st.page1 = Some(p);
        }
        Ok(())
    }

    fn mask<const N: usize>(
        &self,
        st: &mut PageState,
        ctx: &PageCtx<'_>,
        sum: &mut [u8; N],
    ) -> Result<()> {
        let class = st.class;
        let keys = st.checked_keys()?;
        let m = keys.mask(class, ctx.pgno, ctx.offset);
        for (s, m) in sum.iter_mut().zip(m) {
            *s ^= m;
        }
        Ok(())
    }
}

/// What SQLite reads in place of a main-database page 1 it asked only part
/// of (the header read when a connection opens) when the page cannot be
/// decrypted: the header string, the clear bytes 16..24, zeros. The error
/// is reported at the first whole read of page 1.
fn clear_header_only(image: &mut [u8]) {
    image[..16].copy_from_slice(MAGIC);
    image[24..].fill(0);
}

impl PageCodec for CryptoCodec {
    type State = CryptoState;

    fn mapping(&self, kind: FileKind) -> Mapping {
        match kind {
            FileKind::MainDb | FileKind::MainJournal | FileKind::Wal => Mapping::Pages,
            FileKind::TempDb
            | FileKind::TransientDb
            | FileKind::TempJournal
            | FileKind::SubJournal => Mapping::Stream,
            // File names only (the journals of a multi-database commit).
            FileKind::SuperJournal => Mapping::None,
        }
    }

    fn name(&self) -> &'static str {
        "crypto"
    }

    fn reserve(&self) -> usize {
        SLICE
    }

    fn min_page_size(&self) -> usize {
        MIN_PAGE_SIZE
    }

    fn open(
        &self,
        file: &FileInfo<'_>,
        name: &OpenName<'_>,
        _: OpenOptions,
    ) -> Result<CryptoState> {
        let inner = match self.mapping(file.kind) {
            Mapping::Stream => {
                let mut key = Zeroizing::new([0u8; 32]);
                rand::rngs::OsRng.fill_bytes(&mut *key);
                let iv = [0u8; 16];
                Inner::Stream(Box::new(Ctr128BE::<Aes256>::new(
                    (&*key).into(),
                    (&iv).into(),
                )))
            }
            _ => Inner::Pages(Box::new(PageState {
                class: Self::class(file.kind),
                source: KeySource::from_name(name, self.key.as_ref()),
                db: self.shared(name.database_name()),
                keys: None,
                keys_gen: 0,
                page1: None,
                ciphers: Ciphers::new(self.cipher),
                frame_header_at: None,
                own_end: 0,
            })),
        };
        Ok(CryptoState { inner })
    }

    fn encode(&self, state: &mut CryptoState, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        match &mut state.inner {
            Inner::Pages(st) => self.encode_page(st, ctx, image).inspect_err(|_| {
                self.failures.fetch_add(1, Ordering::Relaxed);
            }),
            Inner::Stream(_) => Err(Error::new(
                codes::SQLITE_INTERNAL,
                "page image handed to a stream-mapped file",
            )),
        }
    }

    fn decode(&self, state: &mut CryptoState, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        let Inner::Pages(st) = &mut state.inner else {
            return Err(Error::new(
                codes::SQLITE_INTERNAL,
                "page image handed to a stream-mapped file",
            ));
        };
        // A WAL page read together with its frame header is WAL recovery,
        // which checks SQLite's frame checksums; a journal record this
        // handle did not write is a rollback of a crashed transaction, which
        // checks SQLite's record checksums.
        let whole_frame = matches!(
            (st.frame_header_at.take(), ctx.offset.checked_sub(24)),
            (Some(header), Some(frame)) if header == frame
        );
        let recovering = match ctx.kind {
            FileKind::Wal => whole_frame,
            FileKind::MainJournal => ctx.offset >= st.own_end,
            _ => false,
        };
        match self.decode_page(st, ctx, image) {
            Ok(()) => Ok(()),
            Err(fail) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                if ctx.kind == FileKind::MainDb && ctx.pgno == 1 && ctx.partial {
                    // The header read at open: let the connection open;
                    // the first whole read of page 1 reports the problem.
                    clear_header_only(image);
                    return Ok(());
                }
                match fail {
                    Fail::Hard(e) => Err(e),
                    Fail::Auth(why) if recovering => {
                        // What a torn write at the end of a WAL or journal
                        // looks like after a crash. Zeros make SQLite's own
                        // checksum of the frame or record fail, so it ends
                        // the log there, exactly as for a torn plaintext
                        // frame.
                        vfs_core::log(
                            codes::SQLITE_IOERR_DATA,
                            &format!(
                                "vfs-crypto: {}: {why}; treated as the end of the log",
                                ctx.describe()
                            ),
                        );
                        image.fill(0);
                        Ok(())
                    }
                    Fail::Auth(why) => Err(Error::new(codes::SQLITE_IOERR_DATA, why)),
                }
            }
        }
    }

    fn wal_frame_checksum(
        &self,
        state: &mut CryptoState,
        ctx: &PageCtx<'_>,
        checksum: &mut [u8; 8],
        dir: Direction,
    ) -> Result<()> {
        let Inner::Pages(st) = &mut state.inner else {
            return Ok(());
        };
        self.mask(st, ctx, checksum)?;
        if dir == Direction::Decode {
            st.frame_header_at = Some(ctx.offset);
        }
        Ok(())
    }

    fn journal_checksum(
        &self,
        state: &mut CryptoState,
        ctx: &PageCtx<'_>,
        checksum: &mut [u8; 4],
        _dir: Direction,
    ) -> Result<()> {
        let Inner::Pages(st) = &mut state.inner else {
            return Ok(());
        };
        self.mask(st, ctx, checksum)
    }

    fn encode_stream(
        &self,
        state: &mut CryptoState,
        ctx: &StreamCtx<'_>,
        data: &mut [u8],
    ) -> Result<()> {
        self.stream(state, ctx, data)
    }

    fn decode_stream(
        &self,
        state: &mut CryptoState,
        ctx: &StreamCtx<'_>,
        data: &mut [u8],
    ) -> Result<()> {
        self.stream(state, ctx, data)
    }

    fn owns_pragma(&self, name: &str) -> bool {
        OWN_PRAGMAS.iter().any(|p| name.eq_ignore_ascii_case(p))
    }

    fn file_control(
        &self,
        state: &mut CryptoState,
        file: &FileStatus<'_>,
        ctl: &mut FileControl<'_>,
    ) -> Option<Result<()>> {
        let Inner::Pages(st) = &mut state.inner else {
            return None;
        };
        let Control::Pragma(mut p) = ctl.control() else {
            return None;
        };
        let name = p.name().to_ascii_lowercase();
        match name.as_str() {
            "crypto_format" if file.kind == FileKind::MainDb => {
                if p.value().is_some() {
                    return Some(Err(Error::new(
                        codes::SQLITE_ERROR,
                        "crypto_format is read-only",
                    )));
                }
                let answer = match st.db.identity() {
                    Some(ident)
                        if file
                            .reserve
                            .is_some_and(|r| r >= Self::needed(file.stacking)) =>
                    {
                        format!("xaes-256-gcm v1, {}", ident.kdf.describe())
                    }
                    _ => "none".to_owned(),
                };
                p.set_result(&answer);
                Some(Ok(()))
            }
            "key" | "rekey" | "hexkey" | "hexrekey" | "textkey" | "textrekey" => {
                Some(Err(Error::new(
                    codes::SQLITE_ERROR,
                    format!(
                        "PRAGMA {name} is not supported: vfs-crypto takes the key from the URI \
                         (?hexkey=... or ?key=...) or from the registration; to rekey, copy \
                         the database with vfs_crypto::rekey_database (VACUUM INTO a target \
                         URI with the new key)"
                    ),
                )))
            }
            _ => None,
        }
    }
}

/// The pragmas the codec answers: its format, and the key pragmas other
/// encryption extensions take (refused with the way to do it here).
const OWN_PRAGMAS: &[&str] = &[
    "crypto_format",
    "key",
    "rekey",
    "hexkey",
    "hexrekey",
    "textkey",
    "textrekey",
];

impl CryptoCodec {
    /// AES-256-CTR under the file's ephemeral key, counter = offset / 16:
    /// length-preserving and byte-position-local.
    fn stream(&self, state: &mut CryptoState, ctx: &StreamCtx<'_>, data: &mut [u8]) -> Result<()> {
        let Inner::Stream(ctr) = &mut state.inner else {
            return Err(Error::new(
                codes::SQLITE_INTERNAL,
                "byte range handed to a page-mapped file",
            ));
        };
        ctr.try_seek(ctx.offset).map_err(|_| {
            Error::new(
                codes::SQLITE_IOERR,
                format!("offset {} is beyond the stream cipher's range", ctx.offset),
            )
        })?;
        ctr.try_apply_keystream(data).map_err(|_| {
            Error::new(
                codes::SQLITE_IOERR,
                format!(
                    "range at offset {} is beyond the stream cipher's range",
                    ctx.offset
                ),
            )
        })?;
        self.temp_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}
