//! The page codec plugged into `vfs_page`: settings, per-file state, keys,
//! and the codec's hooks. Page images themselves are sealed and opened in
//! `image.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use rand::RngCore;
use vfs_core::{
    Error, FileControl, FileKind, FileNameBuf, LockLevel, OpenName, OpenOptions, Result, codes,
};
use vfs_page::{Direction, FileInfo, FileStatus, Mapping, PageCodec, PageCtx, Stacking, StreamCtx};
use zeroize::Zeroizing;

use crate::derive::DbKeys;
use crate::format::{Class, FORMAT_VERSION, Identity, JournalBinding, Kdf, SLICE, V1};
use crate::gcm::PageCipher;
use crate::key::{KdfParams, Key, KeySource, argon2id};
use crate::page1::Page1;
use crate::session::Ciphers;
use crate::shared::{DbShared, KdfCache, KdfEntry, Page1State};
use crate::temp::TempCipher;

/// Settings of a crypto layer.
#[derive(Clone, Debug)]
pub struct CryptoOptions {
    /// The key of every database opened without a key in its URI (`None`:
    /// a URI key is required).
    pub key: Option<Key>,
    /// Argon2id cost for new passphrase (`key=`) databases.
    pub kdf: KdfParams,
    /// The largest Argon2id cost a database may ask for, per parameter
    /// ([`KdfParams::LIMIT`] by default). The cost is recorded in clear in
    /// the file, so without a cap a hostile file could make opening it
    /// take a gigabyte of memory and many seconds; a file asking for more
    /// is refused (`SQLITE_NOTADB`) before any derivation runs. New
    /// databases must fit too.
    pub kdf_limit: KdfParams,
    /// The AES-256-GCM implementation ([`PageCipher::default`]: AWS-LC's
    /// with the crate feature `aws-lc`, on by default, RustCrypto's
    /// without; the format is the same either way).
    pub cipher: PageCipher,
}

impl Default for CryptoOptions {
    fn default() -> Self {
        CryptoOptions {
            key: None,
            kdf: KdfParams::DEFAULT,
            kdf_limit: KdfParams::LIMIT,
            cipher: PageCipher::default(),
        }
    }
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
    /// Argon2id derivations run (passphrase keys).
    pub kdf_runs: u64,
    /// Argon2id results held for reuse: those of passphrases that proved
    /// right, while a database uses them.
    pub kdf_cached: u64,
}

/// A master key, with the Argon2id result it came from.
type Master = (Zeroizing<[u8; 32]>, Option<Arc<KdfEntry>>);

/// Which database a file belongs to, for sharing state among its files.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum DbKey {
    /// One SQLite connection's database (`OpenName::database_id`).
    Connection(usize),
    /// A name built by Rust code: the database's path.
    Path(FileNameBuf),
}

/// The encryption codec: a [`PageCodec`] for
/// [`PageVfs`](vfs_page::PageVfs). Most users want
/// [`Crypto`](crate::Crypto), which wraps it.
pub struct CryptoCodec {
    key: Option<Key>,
    kdf: KdfParams,
    kdf_limit: KdfParams,
    pub(crate) cipher: PageCipher,
    dbs: Mutex<HashMap<DbKey, Weak<DbShared>>>,
    kdf_cache: KdfCache,
    pub(crate) encrypted: AtomicU64,
    pub(crate) decrypted: AtomicU64,
    failures: AtomicU64,
    temp_bytes: AtomicU64,
    kdf_runs: AtomicU64,
    #[cfg(feature = "test-hooks")]
    collide: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for CryptoCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CryptoCodec")
            .field("registration_key", &self.key.is_some())
            .field("kdf", &self.kdf)
            .field("kdf_limit", &self.kdf_limit)
            .finish()
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
    Stream(Box<TempCipher>),
}

/// The state of a main database, journal or WAL file.
pub(crate) struct PageState {
    pub(crate) class: Class,
    pub(crate) source: Arc<KeySource>,
    pub(crate) db: Arc<DbShared>,
    /// The keys `ciphers` are for.
    keys: Option<Arc<DbKeys>>,
    pub(crate) ciphers: Ciphers,
    /// Main database: the last page 1 decoded or encoded.
    pub(crate) page1: Option<Page1>,
    /// Journal: what its records are bound to, from its first header.
    pub(crate) journal: Option<JournalBinding>,
    /// Journal: whether this handle told the database it writes a journal.
    published_journal: bool,
    /// Journal: whether this handle told the database it plays one back.
    published_restoring: bool,
    /// The Argon2id result of this handle's passphrase that did not prove
    /// right: reused by this handle only (so a connection with a wrong
    /// passphrase derives once), zeroized when it closes.
    failed_kdf: Option<Arc<KdfEntry>>,
}

impl PageState {
    /// Makes `keys` the ones the ciphers serve (dropping derived keys of
    /// others).
    pub(crate) fn use_keys(&mut self, keys: &Arc<DbKeys>) {
        if !self.keys.as_ref().is_some_and(|k| Arc::ptr_eq(k, keys)) {
            self.ciphers.clear();
            self.keys = Some(keys.clone());
        }
    }

    /// The journal no longer describes a transaction this connection
    /// writes.
    fn end_journal(&mut self) {
        self.journal = None;
        if std::mem::take(&mut self.published_journal) {
            self.db.lock().journal = None;
        }
        if std::mem::take(&mut self.published_restoring) {
            self.db.lock().restoring = None;
        }
    }
}

impl Drop for PageState {
    fn drop(&mut self) {
        self.end_journal();
        // A rollback journal is opened and closed per write transaction:
        // its encryption session goes to the next one (see
        // `Shared::keep_session`).
        if self.class == Class::Journal
            && let Some(keys) = &self.keys
            && let Some(session) = self.ciphers.take_session()
        {
            self.db.lock().keep_session(keys, session);
        }
    }
}

/// How a page failed to decode.
pub(crate) enum Fail {
    /// Key or format problem: always an error.
    Hard(Error),
    /// The image does not authenticate (damaged, torn, moved, replayed
    /// from elsewhere).
    Auth(String),
}

impl CryptoCodec {
    /// A codec with these options.
    pub fn new(opts: CryptoOptions) -> CryptoCodec {
        CryptoCodec {
            key: opts.key,
            kdf: opts.kdf,
            kdf_limit: opts.kdf_limit,
            cipher: opts.cipher,
            dbs: Mutex::new(HashMap::new()),
            kdf_cache: KdfCache::default(),
            encrypted: AtomicU64::new(0),
            decrypted: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            temp_bytes: AtomicU64::new(0),
            kdf_runs: AtomicU64::new(0),
            #[cfg(feature = "test-hooks")]
            collide: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> CryptoStats {
        CryptoStats {
            pages_encrypted: self.encrypted.load(Ordering::Relaxed),
            pages_decrypted: self.decrypted.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
            temp_bytes: self.temp_bytes.load(Ordering::Relaxed),
            kdf_runs: self.kdf_runs.load(Ordering::Relaxed),
            kdf_cached: self.kdf_cache.live() as u64,
        }
    }

    /// Test hook: while on, every key passes the key check (as a wrong key
    /// whose 24-bit check value collides would, once in 2^24), so the
    /// paths that must not trust the check alone can be tested.
    #[cfg(feature = "test-hooks")]
    #[doc(hidden)]
    pub fn force_key_check_collision(&self, on: bool) {
        self.collide.store(on, Ordering::SeqCst);
    }

    fn collide(&self) -> bool {
        #[cfg(feature = "test-hooks")]
        {
            self.collide.load(Ordering::SeqCst)
        }
        #[cfg(not(feature = "test-hooks"))]
        {
            false
        }
    }

    /// The shared state of the database `name` belongs to, and whether it
    /// is matched by connection (not by path).
    fn shared(&self, name: &OpenName<'_>) -> (Arc<DbShared>, bool) {
        let key = match (name.database_id(), name.database_name()) {
            (Some(id), _) => DbKey::Connection(id),
            (None, Some(path)) => DbKey::Path(path.to_owned()),
            (None, None) => return (Arc::new(DbShared::default()), false),
        };
        let by_connection = matches!(key, DbKey::Connection(_));
        let mut map = self.dbs.lock();
        if let Some(s) = map.get(&key).and_then(Weak::upgrade) {
            return (s, by_connection);
        }
        map.retain(|_, w| w.strong_count() > 0);
        let s = Arc::new(DbShared::default());
        map.insert(key, Arc::downgrade(&s));
        (s, by_connection)
    }

    /// The key source of a file being opened. The journal and WAL a
    /// connection opens for its database carry the database's URI
    /// parameters (SQLite appends them to their names) and this layer's
    /// registration key: they take the source the connection's main file
    /// parsed. Files matched by path parse their own.
    fn key_source(
        &self,
        kind: FileKind,
        name: &OpenName<'_>,
        db: &DbShared,
        by_connection: bool,
    ) -> Arc<KeySource> {
        if by_connection
            && matches!(kind, FileKind::MainJournal | FileKind::Wal)
            && let Some(source) = &db.lock().source
        {
            return source.clone();
        }
        let source = Arc::new(KeySource::from_name(name, self.key.as_ref()));
        if by_connection && kind == FileKind::MainDb {
            db.lock().source = Some(source.clone());
        }
        source
    }

    /// The reserve a database needs for this layer and those below it (the
    /// slices of layers above, if any, sit before the slice, inside what it
    /// encrypts: a larger reserve is fine).
    pub(crate) fn needed(stacking: Stacking) -> usize {
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
    pub(crate) fn slice_start(&self, ctx: &PageCtx<'_>) -> std::result::Result<usize, String> {
        let n = ctx.page_size;
        if n < crate::MIN_PAGE_SIZE {
            return Err(format!(
                "{n}-byte pages are too small to encrypt (at least {} bytes)",
                crate::MIN_PAGE_SIZE
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

    /// Refuses Argon2id parameters above the limit.
    fn within_limit(&self, params: KdfParams, whose: &str) -> Result<()> {
        let l = self.kdf_limit;
        if params.memory_kib_log2 > l.memory_kib_log2
            || params.iterations > l.iterations
            || params.lanes > l.lanes
        {
            return Err(Error::new(
                codes::SQLITE_NOTADB,
                format!(
                    "{whose} asks for {}, more than this VFS allows ({}; raise \
                     CryptoOptions::kdf_limit to open it)",
                    Kdf::Argon2id(params).describe(),
                    Kdf::Argon2id(l).describe()
                ),
            ));
        }
        Ok(())
    }

    /// The master key for `ident` from `source`, with the Argon2id result
    /// it came from (to keep if the key proves right).
    fn master(
        &self,
        source: &KeySource,
        ident: &Identity,
        failed: Option<&Arc<KdfEntry>>,
    ) -> Result<Master> {
        let notadb = |m: String| Error::new(codes::SQLITE_NOTADB, m);
        match (source, ident.kdf) {
            (KeySource::Missing(why), _) => Err(notadb(why.clone())),
            (KeySource::Raw { key, .. }, Kdf::Raw) => Ok((key.clone(), None)),
            (KeySource::Raw { origin, .. }, Kdf::Argon2id(_)) => Err(notadb(format!(
                "this database is protected by a passphrase (open it with ?key=...), but \
                 {origin} is a raw key"
            ))),
            (KeySource::Passphrase { origin, .. }, Kdf::Raw) => Err(notadb(format!(
                "this database is encrypted with a raw 256-bit key (?hexkey=... or the \
                 registration key), but {origin} is a passphrase"
            ))),
            (KeySource::Passphrase { text, .. }, Kdf::Argon2id(params)) => {
                if let Some(e) = self.kdf_cache.find(text, &ident.salt, params) {
                    return Ok((e.master.clone(), Some(e)));
                }
                if let Some(e) = failed
                    && e.salt == ident.salt
                    && e.params == params
                    && *e.passphrase == **text
                {
                    return Ok((e.master.clone(), Some(e.clone())));
                }
                self.within_limit(params, "this database")?;
                self.kdf_runs.fetch_add(1, Ordering::Relaxed);
                let master = argon2id(text, &ident.salt, params).map_err(notadb)?;
                let entry = Arc::new(KdfEntry {
                    passphrase: text.clone(),
                    salt: ident.salt,
                    params,
                    master: master.clone(),
                });
                Ok((master, Some(entry)))
            }
        }
    }

    /// The keys of `source` for `ident`, checked against its key check
    /// value. A passphrase's derivation is kept for reuse only when the
    /// check passes.
    pub(crate) fn keys_for(
        &self,
        st: &mut PageState,
        ident: Identity,
    ) -> Result<(Arc<DbKeys>, Option<Arc<KdfEntry>>)> {
        let (master, entry) = self.master(&st.source, &ident, st.failed_kdf.as_ref())?;
        let keys = DbKeys::derive(&master, ident);
        if !keys.matches() && !self.collide() {
            st.failed_kdf = entry;
            return Err(Error::new(
                codes::SQLITE_NOTADB,
                format!(
                    "wrong key: the key check value of {} does not match this database's ({})",
                    st.source.origin(),
                    keys.ident.kdf.describe()
                ),
            ));
        }
        if let Some(e) = &entry {
            self.kdf_cache.keep(e);
        }
        Ok((Arc::new(keys), entry))
    }

    /// The keys a journal or WAL (or a page of the main database other
    /// than page 1) is read and written with: those page 1 authenticated
    /// under, never anything else.
    pub(crate) fn trusted(&self, st: &PageState) -> Result<Arc<DbKeys>> {
        if let Some(k) = &st.db.lock().trusted {
            return Ok(k.clone());
        }
        Err(Error::new(
            codes::SQLITE_NOTADB,
            match &*st.source {
                KeySource::Missing(why) => why.clone(),
                _ => "page 1 of the database has not authenticated under this key (wrong key, \
                      damaged header, or not read yet)"
                    .to_owned(),
            },
        ))
    }

    /// The keys of a main database about to be written: the trusted ones,
    /// or a new identity for a database that has none yet.
    pub(crate) fn keys_for_write(&self, st: &PageState, ctx: &PageCtx<'_>) -> Result<Arc<DbKeys>> {
        if let Some(k) = &st.db.lock().trusted {
            return Ok(k.clone());
        }
        if ctx.stored_reserve.is_some() {
            return Err(Error::new(
                codes::SQLITE_IOERR_WRITE,
                "page written to an existing encrypted database before its header \
                 authenticated",
            ));
        }
        self.new_identity(st)
    }

    /// A new database's identity (a fresh salt, this handle's key), made
    /// the database's unless another of its files made one first.
    fn new_identity(&self, st: &PageState) -> Result<Arc<DbKeys>> {
        let kdf = match &*st.source {
            KeySource::Raw { .. } => Kdf::Raw,
            KeySource::Passphrase { .. } => {
                self.within_limit(self.kdf, "CryptoOptions::kdf for new databases")?;
                Kdf::Argon2id(self.kdf)
            }
            KeySource::Missing(why) => return Err(Error::new(codes::SQLITE_NOTADB, why.clone())),
        };
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let draft = Identity {
            version: FORMAT_VERSION,
            salt,
            kdf,
            kcv: [0; 3],
        };
        let (master, entry) = self.master(&st.source, &draft, None)?;
        let kcv = DbKeys::derive(&master, draft.clone()).kcv;
        let keys = Arc::new(DbKeys::derive(&master, Identity { kcv, ..draft }));
        if let Some(e) = &entry {
            self.kdf_cache.keep(e);
        }
        let mut shared = st.db.lock();
        // Another file of the database may have created it meanwhile.
        let trusted = shared.trusted.get_or_insert(keys).clone();
        if shared.kdf.is_none() {
            shared.kdf = entry;
        }
        Ok(trusted)
    }

    /// Makes `keys` (which authenticated the stored page 1) the database's.
    pub(crate) fn trust(&self, st: &PageState, keys: &Arc<DbKeys>, entry: Option<Arc<KdfEntry>>) {
        let mut shared = st.db.lock();
        if !shared
            .trusted
            .as_ref()
            .is_some_and(|k| Arc::ptr_eq(k, keys))
        {
            shared.set_trusted(keys.clone());
            shared.kdf = entry;
        }
    }

    pub(crate) fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    fn stream(&self, state: &mut CryptoState, ctx: &StreamCtx<'_>, data: &mut [u8]) -> Result<()> {
        let Inner::Stream(cipher) = &mut state.inner else {
            return Err(Error::new(
                codes::SQLITE_INTERNAL,
                "byte range handed to a page-mapped file",
            ));
        };
        cipher.apply(ctx, data)?;
        self.temp_bytes
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// The first journal header, on its way to or from the base.
    ///
    /// Version 2 keeps 20 bytes of its own in it: `BE32(before)` at 28..32
    /// and, at 32..48, a tag over that and SQLite's fields 12..28 (checksum
    /// seed, database size, sector and page size). A journal whose header
    /// does not carry the tag (planted, altered, another database's) is not
    /// one this database may play back: SQLite is shown no journal, so it
    /// neither truncates the database to the size such a header names nor
    /// reads a record. A journal whose tag is right but whose transaction
    /// began from another state of the database (stale) is refused the same
    /// way once the stored page 1 is known under the playback's lock.
    fn journal_header(
        &self,
        st: &mut PageState,
        ctx: &StreamCtx<'_>,
        header: &mut [u8],
        dir: Direction,
    ) -> Result<bool> {
        if header.len() < STAMP_END {
            // A zeroed or truncated header: no transaction any more.
            if dir == Direction::Encode {
                st.end_journal();
            }
            return Ok(true);
        }
        let seed = u32::from_be_bytes([header[12], header[13], header[14], header[15]]);
        let mut shared = st.db.lock();
        if dir == Direction::Decode && !st.published_journal {
            shared.foreign_journal = true;
        }
        let keys = match (shared.trusted.clone(), dir) {
            (Some(keys), _) => keys,
            (None, Direction::Encode) => {
                // A write transaction reads page 1 first, so this is a new
                // database's first transaction: its identity is made now,
                // for this header and the page 1 the transaction writes.
                drop(shared);
                let keys = self.new_identity(st)?;
                shared = st.db.lock();
                keys
            }
            (None, Direction::Decode) => {
                // Page 1 has not authenticated (a wrong key): nothing to
                // check the journal against, and its records will not
                // decode either.
                drop(shared);
                st.journal = None;
                return Ok(true);
            }
        };
        if keys.ident.version == V1 {
            drop(shared);
            st.journal = None;
            return Ok(true);
        }
        match dir {
            Direction::Encode => {
                // A new transaction's journal: bound to the stored page 1 it
                // starts from, and to its own id, which every page 1 it
                // writes will carry.
                let before = match shared.page1 {
                    Page1State::Authenticated(id) => id,
                    _ => 0,
                };
                shared.journal = Some(seed);
                drop(shared);
                header[28..32].copy_from_slice(&before.to_be_bytes());
                let tag = keys.journal_tag(before, &header[12..28]);
                header[32..STAMP_END].copy_from_slice(&tag);
                st.journal = Some(JournalBinding { before, id: seed });
                st.published_journal = true;
                Ok(true)
            }
            Direction::Decode => {
                let page1 = shared.page1;
                drop(shared);
                let before = u32::from_be_bytes([header[28], header[29], header[30], header[31]]);
                let tag = keys.journal_tag(before, &header[12..28]);
                let genuine = header[32..STAMP_END] == tag;
                header[28..STAMP_END].fill(0);
                let binding = JournalBinding { before, id: seed };
                st.journal = Some(binding);
                let refuse = |why: &str| {
                    vfs_core::log(
                        codes::SQLITE_IOERR_DATA,
                        &format!("vfs-crypto: {}: {why}; ignored", ctx.path),
                    );
                    Ok(false)
                };
                if header[..8] != JOURNAL_MAGIC {
                    // Not a header SQLite plays back (zeroed by a finished
                    // transaction, or not synced yet): nothing to judge.
                    return Ok(true);
                }
                if !genuine {
                    return refuse(
                        "the journal's header was not written for this database with its key \
                         (planted or altered)",
                    );
                }
                match page1 {
                    Page1State::Authenticated(now) if !binding.fits(now) => {
                        return refuse(
                            "the journal belongs to an earlier state of the database (stale)",
                        );
                    }
                    Page1State::Failed => {
                        return Err(Error::new(
                            codes::SQLITE_IOERR_DATA,
                            format!(
                                "{}: the database's page 1 does not authenticate, so its \
                                 journal cannot be checked against it",
                                ctx.path
                            ),
                        ));
                    }
                    _ => {}
                }
                if !st.published_journal && binding.before != 0 {
                    // Played back, it restores the page 1 its transaction
                    // began from: that page 1 carries that id again.
                    st.db.lock().restoring = Some(binding.before);
                    st.published_restoring = true;
                }
                Ok(true)
            }
        }
    }
}

/// The end of the bytes version 2 keeps in a journal's first header.
const STAMP_END: usize = 48;

/// The 8 bytes that open a rollback-journal header SQLite plays back.
const JOURNAL_MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];

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
        crate::MIN_PAGE_SIZE
    }

    fn open(
        &self,
        file: &FileInfo<'_>,
        name: &OpenName<'_>,
        _: OpenOptions,
    ) -> Result<CryptoState> {
        let inner = match self.mapping(file.kind) {
            Mapping::Stream => Inner::Stream(Box::new(TempCipher::new())),
            _ => {
                let (db, by_connection) = self.shared(name);
                Inner::Pages(Box::new(PageState {
                    class: Self::class(file.kind),
                    source: self.key_source(file.kind, name, &db, by_connection),
                    db,
                    keys: None,
                    ciphers: Ciphers::new(self.cipher),
                    page1: None,
                    journal: None,
                    published_journal: false,
                    published_restoring: false,
                    failed_kdf: None,
                }))
            }
        };
        Ok(CryptoState { inner })
    }

    fn encode(&self, state: &mut CryptoState, ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        match &mut state.inner {
            Inner::Pages(st) => self
                .encode_page(st, ctx, image)
                .inspect_err(|_| self.failed()),
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
        match self.decode_page(st, ctx, image) {
            Ok(()) => Ok(()),
            Err(fail) => {
                self.failed();
                if ctx.kind == FileKind::MainDb && ctx.pgno == 1 && ctx.partial {
                    // The header read at open: let the connection open;
                    // the first whole read of page 1 reports the problem.
                    crate::image::clear_header_only(image);
                    return Ok(());
                }
                image.fill(0);
                match fail {
                    Fail::Hard(e) => Err(e),
                    Fail::Auth(why) if ctx.recovery => {
                        // What a write torn by a crash looks like at the end
                        // of a hot journal or WAL. The keys are those page 1
                        // authenticated under (nothing else decodes a journal
                        // or WAL), so it is not a wrong key: the layer ends
                        // the log here, exactly as for a torn plaintext log.
                        vfs_core::log(
                            codes::SQLITE_IOERR_DATA,
                            &format!(
                                "vfs-crypto: {}: {why}; treated as the end of the log",
                                ctx.describe()
                            ),
                        );
                        Err(ctx.torn(why))
                    }
                    Fail::Auth(why) => Err(Error::new(codes::SQLITE_IOERR_DATA, why)),
                }
            }
        }
    }

    fn decode_part(
        &self,
        state: &mut CryptoState,
        ctx: &PageCtx<'_>,
        image: &mut [u8],
        range: std::ops::Range<usize>,
        out: &mut [u8],
    ) -> Result<()> {
        if let Inner::Pages(st) = &state.inner
            && self.page1_part(st, ctx, image, range.clone(), out)
        {
            return Ok(());
        }
        self.decode(state, ctx, image)?;
        out.copy_from_slice(&image[range]);
        Ok(())
    }

    fn wal_frame_checksum(
        &self,
        state: &mut CryptoState,
        ctx: &PageCtx<'_>,
        checksum: &mut [u8; 8],
        _dir: Direction,
    ) -> Result<()> {
        let Inner::Pages(st) = &mut state.inner else {
            return Ok(());
        };
        self.mask(st, ctx, checksum)
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

    fn journal_header(
        &self,
        state: &mut CryptoState,
        ctx: &StreamCtx<'_>,
        header: &mut [u8],
        dir: Direction,
    ) -> Result<bool> {
        match &mut state.inner {
            Inner::Pages(st) if st.class == Class::Journal => {
                self.journal_header(st, ctx, header, dir)
            }
            _ => Ok(true),
        }
    }

    fn locked(&self, state: &mut CryptoState, level: LockLevel) -> bool {
        let Inner::Pages(st) = &mut state.inner else {
            return false;
        };
        let mut shared = st.db.lock();
        shared.locked(level);
        // Before a hot journal is played back (under EXCLUSIVE), the stored
        // page 1 as it is under this lock: the journal is checked against
        // it.
        level == LockLevel::Exclusive && std::mem::take(&mut shared.foreign_journal)
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
        crate::pragma::file_control(Self::needed(file.stacking), st, file, ctl)
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
