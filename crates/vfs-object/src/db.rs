//! One database as this process knows it: its newest known state (the
//! head), the in-process writer slot, catching up with the log, and page
//! reads. Publishing a commit is in `publish.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use object_store::path::Path;
use parking_lot::Mutex;
use vfs_core::{Error, Result, codes};

use crate::cache::{DiskKey, PageCache};
use crate::client::{Client, StoreError};
use crate::format::{self, FormatError, Index};
use crate::keys::DbKeys;
use crate::lease::LeaseSlot;
use crate::runtime::Runtime;
use crate::snapshot::plan_catch_up;
use crate::version::{CommitInfo, Page, Version};

/// First range read of a large object: enough for the header and the index
/// of about 4,000 pages.
const INDEX_PROBE: u64 = 64 << 10;
/// Commits fetched at once when catching up.
pub(crate) const FETCH_CONCURRENCY: usize = 16;

/// What the backend's files share: the store client, the runtime and the
/// cache.
pub struct Ctx {
    pub client: Client,
    pub runtime: Runtime,
    pub cache: Arc<PageCache>,
}

pub struct Db {
    /// The name SQLite opened (for messages).
    pub name: String,
    pub keys: DbKeys,
    state: Mutex<DbState>,
    /// Held while catching up, so concurrent read transactions share one
    /// listing instead of each making their own.
    refresh_lock: Mutex<()>,
    /// Opened with SQLITE_OPEN_CREATE by this process: exists (empty) even
    /// before its first commit.
    created: AtomicBool,
    /// The compaction policy's background run is going.
    compacting: AtomicBool,
    /// The policy's last background run.
    pub(crate) background: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The writer lease, for connections that use one.
    pub(crate) lease: LeaseSlot,
    /// A main file of it has been opened in this process (the first open
    /// reads ahead, see `prefetch.rs`).
    opened: AtomicBool,
    /// The group commit queue, once a connection opened it with
    /// `sync=async` (`group.rs`).
    pub(crate) group: OnceLock<Arc<crate::group::Group>>,
}

struct DbState {
    head: Arc<Version>,
    /// The connection holding RESERVED or stronger.
    writer: Option<u64>,
    /// When the last completed catch-up started.
    last_refresh: Option<Instant>,
    /// Catch up at the next read transaction whatever the poll interval
    /// (after a lost race or an unknown commit outcome).
    refresh_due: bool,
    /// The newest snapshot LSN this process has seen or written (0: none).
    newest_snapshot: u64,
}

/// Why a connection may not become the writer.
pub enum WriteRefused {
    Busy,
    Stale { head: u64 },
}

impl Db {
    pub fn new(name: &str, keys: DbKeys) -> Arc<Db> {
        Arc::new(Db {
            name: name.to_owned(),
            state: Mutex::new(DbState {
                head: Arc::new(Version::empty()),
                writer: None,
                last_refresh: None,
                refresh_due: true,
                newest_snapshot: 0,
            }),
            refresh_lock: Mutex::new(()),
            created: AtomicBool::new(false),
            compacting: AtomicBool::new(false),
            background: Mutex::new(None),
            lease: LeaseSlot::new(keys.lease().clone()),
            keys,
            opened: AtomicBool::new(false),
            group: OnceLock::new(),
        })
    }

    /// The newest state this process knows (no request).
    pub fn head(&self) -> Arc<Version> {
        Arc::clone(&self.state.lock().head)
    }

    /// Whether a connection of this process opened it with
    /// SQLITE_OPEN_CREATE.
    pub fn opened_for_create(&self) -> bool {
        self.created.load(Ordering::Relaxed)
    }

    /// True for the first call only: the first open of a main file.
    pub fn first_open(&self) -> bool {
        !self.opened.swap(true, Ordering::Relaxed)
    }

    pub fn mark_opened_for_create(&self) {
        self.created.store(true, Ordering::Relaxed);
    }

    /// Whether the log has been read at least once.
    pub fn loaded(&self) -> bool {
        self.state.lock().last_refresh.is_some()
    }

    /// The state a read transaction beginning now reads: the head, after
    /// looking for newer commits in the store if the last look started
    /// more than `poll` ago (with `poll` zero: before now). Store failures
    /// become errors with `code`.
    pub fn read_state(&self, ctx: &Ctx, poll: Duration, code: i32) -> Result<Arc<Version>> {
        // One clock read per read transaction: it is on every query's path.
        let began = Instant::now();
        if let Some(v) = self.fresh_enough(poll, began, began) {
            return Ok(v);
        }
        let _one_at_a_time = self.refresh_lock.lock();
        if let Some(v) = self.fresh_enough(poll, began, Instant::now()) {
            return Ok(v);
        }
        self.catch_up(ctx)
            .map_err(|e| e.into_error(code, &self.name))
    }

    fn fresh_enough(&self, poll: Duration, began: Instant, now: Instant) -> Option<Arc<Version>> {
        let st = self.state.lock();
        if st.head.unpublished {
            // Queued transactions sit on the head: catching up waits until
            // they are uploaded (the uploader reconciles with the store).
            return Some(Arc::clone(&st.head));
        }
        let last = st.last_refresh?;
        let fresh = last >= began || now.saturating_duration_since(last) < poll;
        (fresh && !st.refresh_due).then(|| Arc::clone(&st.head))
    }

    /// Lists the log after the head and applies what it finds, in order,
    /// as it arrives (at most 16 objects in memory).
    /// Starts from the newest snapshot instead when the log no longer
    /// continues the head (see [`plan_catch_up`]).
    fn catch_up(&self, ctx: &Ctx) -> Result<Arc<Version>, CatchUpError> {
        let started = Instant::now();
        let head = self.head();
        let client = ctx.client.clone();
        let cache = Arc::clone(&ctx.cache);
        let keys = self.keys.clone();
        let caught_up = ctx.runtime.run(async move {
            let listed = client
                .list_after(keys.log_dir(), &keys.commit(head.lsn))
                .await
                .map_err(CatchUpError::Store)?;
            let mut found: Vec<(u64, u64)> = listed
                .iter()
                .filter_map(|m| keys.lsn_of(&m.location).map(|l| (l, m.size)))
                .collect();
            found.sort_unstable();
            plan_catch_up(&client, &cache, &keys, head, &found).await
        });
        let (version, snapshot) =
            caught_up.map_err(|e| CatchUpError::Runtime(e.message().to_owned()))??;
        let mut st = self.state.lock();
        // A transaction queued meanwhile (group commit) keeps its head.
        if version.lsn > st.head.lsn && !st.head.unpublished {
            st.head = version;
        }
        if let Some(s) = snapshot {
            st.newest_snapshot = st.newest_snapshot.max(s);
        }
        st.last_refresh = Some(started);
        st.refresh_due = false;
        Ok(Arc::clone(&st.head))
    }

    /// The bytes of `page` (chunk `chunk`): cached, or one range GET.
    pub fn read_chunk(&self, ctx: &Ctx, chunk: u64, page: &Arc<Page>) -> Result<Arc<[u8]>> {
        if let Some(p) = page.cached() {
            return Ok(p);
        }
        self.fetch_chunk(ctx, chunk, page)
    }

    /// Copies `dst.len()` bytes at `within` of `page` (chunk `chunk`).
    #[inline]
    pub fn copy_chunk(
        &self,
        ctx: &Ctx,
        chunk: u64,
        page: &Arc<Page>,
        dst: &mut [u8],
        within: usize,
    ) -> Result<()> {
        if page.copy_to(dst, within) {
            return Ok(());
        }
        let bytes = self.fetch_chunk(ctx, chunk, page)?;
        dst.copy_from_slice(&bytes[within..within + dst.len()]);
        Ok(())
    }

    /// A cache miss: the directory, or one range GET.
    fn fetch_chunk(&self, ctx: &Ctx, chunk: u64, page: &Arc<Page>) -> Result<Arc<[u8]>> {
        let snapshot = page.commit.snapshot;
        let disk_db = if snapshot {
            self.keys.snap_dir().to_string()
        } else {
            self.keys.log_dir().to_string()
        };
        let disk_key = DiskKey {
            db: &disk_db,
            lsn: page.lsn(),
            txid: page.commit.txid,
            chunk,
        };
        if ctx.cache.has_dir()
            && let Some(p) = ctx.cache.disk_get(&disk_key, page.crc)
        {
            ctx.cache.fill(page, Arc::clone(&p));
            return Ok(p);
        }
        let object = self.keys.object_of(&page.commit);
        let range = page.range();
        let start = range.start;
        let client = ctx.client.clone();
        let key_for_request = object.clone();
        let bytes = ctx
            .runtime
            .run(async move { client.get_range(&key_for_request, range).await })?
            .map_err(|e| store_error(codes::SQLITE_IOERR_READ, &self.name, &e))?;
        if bytes.len() != page.commit.chunk_size as usize || !format::check_page(page.crc, &bytes) {
            return Err(Error::new(
                codes::SQLITE_IOERR_DATA,
                format!(
                    "vfs-object: {:?}: page {chunk} read from {object} at offset {start} fails its CRC-32 ({} bytes)",
                    self.name,
                    bytes.len()
                ),
            ));
        }
        let data: Arc<[u8]> = bytes.as_ref().into();
        if ctx.cache.has_dir() {
            ctx.cache.disk_put(&disk_key, &data);
        }
        ctx.cache.fill(page, Arc::clone(&data));
        Ok(data)
    }

    /// Catch up at the next read transaction whatever the poll interval.
    pub(crate) fn mark_refresh_due(&self) {
        self.state.lock().refresh_due = true;
    }

    /// Makes `version` the head if it is newer.
    pub(crate) fn install(&self, version: &Arc<Version>) {
        let mut st = self.state.lock();
        if version.lsn > st.head.lsn && !st.head.unpublished {
            st.head = Arc::clone(version);
        }
    }

    /// Makes `version` the head, whatever its LSN (the group commit's
    /// local head, `group.rs`).
    pub(crate) fn set_head(&self, version: Arc<Version>) {
        self.state.lock().head = version;
    }

    /// Makes connection `id`, reading `snapshot`, the writer.
    pub fn begin_write(
        &self,
        id: u64,
        snapshot: &Version,
    ) -> std::result::Result<(), WriteRefused> {
        let mut st = self.state.lock();
        match st.writer {
            Some(w) if w == id => return Ok(()),
            Some(_) => return Err(WriteRefused::Busy),
            None => {}
        }
        if !st.head.same_state(snapshot) {
            return Err(WriteRefused::Stale { head: st.head.lsn });
        }
        st.writer = Some(id);
        Ok(())
    }

    /// Ends connection `id`'s write (whatever became of it).
    pub fn end_write(&self, id: u64) {
        let mut st = self.state.lock();
        if st.writer == Some(id) {
            st.writer = None;
        }
    }

    /// The newest snapshot LSN this process has seen or written (0: none).
    pub(crate) fn newest_snapshot(&self) -> u64 {
        self.state.lock().newest_snapshot
    }

    /// Records that `snap/<lsn>` exists.
    pub(crate) fn note_snapshot(&self, lsn: u64) {
        let mut st = self.state.lock();
        st.newest_snapshot = st.newest_snapshot.max(lsn);
    }

    /// Claims the right to run the compaction policy's background work;
    /// false while another run is going.
    pub(crate) fn claim_compaction(&self) -> bool {
        !self.compacting.swap(true, Ordering::AcqRel)
    }

    /// Ends what [`Db::claim_compaction`] claimed.
    pub(crate) fn release_compaction(&self) {
        self.compacting.store(false, Ordering::Release);
    }

    /// Whether any connection of the process holds RESERVED or stronger.
    pub fn has_writer(&self) -> bool {
        self.state.lock().writer.is_some()
    }
}

/// `base` with commit `idx` applied; with `bytes` (the whole object), its
/// pages go into the cache (a page failing its CRC is left out: reading it
/// fetches it again and reports the damage).
pub(crate) fn apply_commit(
    cache: &PageCache,
    base: &Version,
    idx: &Index,
    bytes: Option<&[u8]>,
) -> Result<Version, String> {
    let c = idx.header.chunk_size as usize;
    let info = Arc::new(CommitInfo::of(idx));
    base.apply(idx, |i, e| {
        let page = cache.page(&info, i as u32, e.crc);
        let at = idx.page_offset(i) as usize;
        if let Some(b) = bytes.and_then(|b| b.get(at..at + c))
            && format::check_page(e.crc, b)
        {
            cache.fill(&page, b.into());
        }
        page
    })
}

/// Reads the object of `kind` at `key` (LSN `lsn`, listed with `size`
/// bytes): its index, and the whole object when it is at most `whole_max`
/// bytes.
pub(crate) async fn fetch_object(
    client: &Client,
    key: Path,
    lsn: u64,
    size: u64,
    whole_max: u64,
    kind: u16,
) -> Result<(Index, Option<Bytes>), CatchUpError> {
    let format_err = |e: FormatError| CatchUpError::Format(key.to_string(), e);
    let (idx, whole) = if size <= whole_max {
        let bytes = client.get(&key).await.map_err(CatchUpError::Store)?;
        let idx = format::decode_index(&bytes, Some(bytes.len() as u64)).map_err(format_err)?;
        (idx, Some(bytes))
    } else {
        let probe = probe_object(client, &key, size).await?;
        (index_from_probe(client, &key, probe, size).await?, None)
    };
    check_identity(&key, &idx, lsn, kind)?;
    Ok((idx, whole))
}

/// The first bytes of the object at `key` (`size` bytes): enough for its
/// header and usually its index (one range GET).
pub(crate) async fn probe_object(
    client: &Client,
    key: &Path,
    size: u64,
) -> Result<Bytes, CatchUpError> {
    client
        .get_range(key, 0..INDEX_PROBE.min(size))
        .await
        .map_err(CatchUpError::Store)
}

/// The header and index of the object at `key` (`size` bytes) from its
/// first bytes `probe`, reading the rest of the index if it is longer.
pub(crate) async fn index_from_probe(
    client: &Client,
    key: &Path,
    probe: Bytes,
    size: u64,
) -> Result<Index, CatchUpError> {
    let format_err = |e: FormatError| CatchUpError::Format(key.to_string(), e);
    let header = format::decode_header(&probe).map_err(format_err)?;
    let end = header.index_end();
    let prefix = extend_probe(client, key, probe, end).await?;
    format::decode_index(&prefix, Some(size)).map_err(format_err)
}

/// The first `end` bytes of the object at `key`, of which `probe` holds
/// the start: one ranged GET for the rest when the probe is shorter.
pub(crate) async fn extend_probe(
    client: &Client,
    key: &Path,
    probe: Bytes,
    end: u64,
) -> Result<Bytes, CatchUpError> {
    if end <= probe.len() as u64 {
        return Ok(probe);
    }
    let rest = client
        .get_range(key, probe.len() as u64..end)
        .await
        .map_err(CatchUpError::Store)?;
    let mut all = probe.to_vec();
    all.extend_from_slice(&rest);
    Ok(Bytes::from(all))
}

/// Checks that the object at `key` says it is LSN `lsn` of `kind`.
pub(crate) fn check_identity(
    key: &Path,
    idx: &Index,
    lsn: u64,
    kind: u16,
) -> Result<(), CatchUpError> {
    let format_err = |e: FormatError| CatchUpError::Format(key.to_string(), e);
    if idx.header.lsn != lsn {
        return Err(format_err(FormatError(format!(
            "the object says it is LSN {}",
            idx.header.lsn
        ))));
    }
    if idx.header.kind != kind {
        return Err(format_err(FormatError(format!(
            "object kind {} where kind {kind} belongs",
            idx.header.kind
        ))));
    }
    Ok(())
}

/// Why catching up failed.
#[derive(Debug)]
pub(crate) enum CatchUpError {
    Store(StoreError),
    Format(String, FormatError),
    Runtime(String),
}

impl CatchUpError {
    pub(crate) fn into_error(self, code: i32, db: &str) -> Error {
        match self {
            CatchUpError::Store(e) => store_error(code, db, &e),
            CatchUpError::Format(key, e) => Error::new(
                codes::SQLITE_CORRUPT,
                format!("vfs-object: {db:?}: commit object {key} is damaged: {e}"),
            ),
            CatchUpError::Runtime(m) => Error::new(code, format!("vfs-object: {db:?}: {m}")),
        }
    }
}

/// A store failure as an SQLite error with `code`, naming the request.
pub fn store_error(code: i32, db: &str, e: &StoreError) -> Error {
    Error::new(code, format!("vfs-object: {db:?}: {e}"))
}
