//! Group commit (`sync=async`, `docs/object.md`, "Group commit").
//!
//! `COMMIT` writes the transaction to a local queue directory (one file per
//! transaction, `queue.rs`) and returns; its pages join the process's head
//! at once, held in memory (they are in no object yet). An uploader thread
//! publishes the queue in order, merging whatever has piled up into one
//! commit object with one LSN (LSNs are assigned at upload), through the
//! same conditional create as every commit (`publish.rs`). A batch's
//! transaction id is the queue's id and the number of its last
//! transaction, so a restart recognises a batch that landed before its
//! files were deleted. While the queue holds transactions the process does
//! not catch up with the store; a commit of another writer on the state
//! the queue needs is a conflict that stops the queue (never drops it).

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use vfs_core::{Error, Result, codes};

use crate::Shared;
use crate::cache::PageCache;
use crate::client::Client;
use crate::db::{Ctx, Db};
use crate::format::{self, FLAG_FULL_IMAGE, FLAG_VOID, HEADER_LEN, Index, NewCommit};
use crate::keys::DbKeys;
use crate::params::Compaction;
use crate::publish::Published;
use crate::queue::{self, QueueFile};
use crate::snapshot::plan_catch_up;
use crate::version::{CommitInfo, Version};

/// First wait after a failed upload round, doubling up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A batch stops growing past this many bytes of queued transactions.
const BATCH_MAX: u64 = 32 << 20;

/// One database's queue and its uploader.
pub(crate) struct Group {
    /// The queue directory.
    pub(crate) dir: PathBuf,
    queue_max: u64,
    /// The compaction policy run after uploads: the one of the connection
    /// that opened the queue.
    compaction: Compaction,
    name: String,
    state: Mutex<GroupState>,
    changed: Condvar,
}

struct GroupState {
    queue_id: [u8; 8],
    next_seq: u64,
    /// Queued transactions, oldest first; each is a file in the directory.
    queued: VecDeque<Arc<Queued>>,
    queued_bytes: u64,
    /// The store state the queue is uploaded onto.
    published: Arc<Version>,
    /// The newest sequence number known to be in the store.
    landed: u64,
    /// Set when the queue can never be published as it is.
    conflict: Option<String>,
    failed_rounds: u64,
    last_error: String,
    stop: bool,
    /// Retry now (a flush is waiting), not after the backoff.
    kick: bool,
}

struct Queued {
    seq: u64,
    idx: Index,
    body: Vec<u8>,
    path: PathBuf,
}

fn io_write(msg: String) -> Error {
    Error::new(codes::SQLITE_IOERR_WRITE, msg)
}

/// The queue directory a database uses under `root` (one subdirectory per
/// database, its name escaped to one path segment).
pub(crate) fn dir_under(root: &std::path::Path, name: &str) -> PathBuf {
    let mut seg = String::new();
    for b in name.trim_start_matches('/').bytes() {
        if b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_' {
            seg.push(b as char);
        } else {
            seg.push_str(&format!("%{b:02X}"));
        }
    }
    root.join(seg)
}

/// The group of `db` with queue directory `dir`: the one already attached,
/// or a new one that loads what `dir` holds (every file verified), finds
/// which queued transactions already landed in the store, serves the rest
/// as the process's head and starts uploading them.
pub(crate) fn attach(
    shared: &Arc<Shared>,
    db: &Arc<Db>,
    dir: PathBuf,
    queue_max: u64,
    compaction: Compaction,
) -> Result<Arc<Group>> {
    static ATTACH: Mutex<()> = Mutex::new(());
    let _one_at_a_time = ATTACH.lock();
    if let Some(g) = db.group.get() {
        if g.dir != dir {
            return Err(Error::cant_open(format!(
                "vfs-object: database {:?} already queues in {}, not {}",
                db.name,
                g.dir.display(),
                dir.display()
            )));
        }
        return Ok(Arc::clone(g));
    }
    let ctx = &shared.ctx;
    let cant = |m: String| Error::cant_open(format!("vfs-object: {:?}: {m}", db.name));
    let db_key = db.keys.log_dir().to_string();
    let loaded = queue::load(&dir, &db_key).map_err(cant)?;
    let head = db.read_state(ctx, Duration::ZERO, codes::SQLITE_CANTOPEN)?;
    let queue_id = loaded
        .first()
        .map_or_else(rand::random, |l| l.file.queue_id);
    let next_seq = loaded.last().map_or(1, |l| l.file.seq + 1);
    let mut landed = loaded.first().map_or(next_seq - 1, |l| l.file.seq - 1);
    let mut conflict = None;
    let mut queued = VecDeque::new();
    if let Some(first) = loaded.first() {
        let base = first.file.base_lsn;
        if base > head.lsn {
            return Err(cant(format!(
                "queue file {} was made on LSN {base}, but the newest commit in the store is \
                 LSN {}: this queue belongs to another store or prefix",
                first.path.display(),
                head.lsn
            )));
        }
        let (client, keys, to) = (ctx.client.clone(), db.keys.clone(), head.lsn);
        let found = ctx
            .runtime
            .run(async move { classify(&client, &keys, base, to, queue_id).await })?
            .map_err(|e| cant(format!("cannot tell which queued transactions landed: {e}")))?;
        landed = landed.max(found.landed);
        let (done, rest): (Vec<_>, Vec<_>) = loaded.into_iter().partition(|l| l.file.seq <= landed);
        let done: Vec<PathBuf> = done.into_iter().map(|l| l.path).collect();
        queue::remove(&dir, &done).map_err(|e| {
            cant(format!(
                "cannot delete uploaded queue files in {}: {e}",
                dir.display()
            ))
        })?;
        if let (Some(lsn), Some(r)) = (found.foreign, rest.first()) {
            conflict = Some(conflict_message(
                &db.name,
                &dir,
                rest.len(),
                r.file.seq,
                lsn,
            ));
        }
        for l in rest {
            queued.push_back(Arc::new(Queued {
                seq: l.file.seq,
                idx: l.idx,
                body: l.file.body,
                path: l.path,
            }));
        }
    }
    let queued_bytes = queued.iter().map(|q| q.body.len() as u64).sum();
    let group = Arc::new(Group {
        dir,
        queue_max,
        compaction,
        name: db.name.clone(),
        state: Mutex::new(GroupState {
            queue_id,
            next_seq,
            queued,
            queued_bytes,
            published: Arc::clone(&head),
            landed,
            conflict,
            failed_rounds: 0,
            last_error: String::new(),
            stop: false,
            kick: false,
        }),
        changed: Condvar::new(),
    });
    {
        let st = group.state.lock();
        // In conflict the queue was made on another state than the store's
        // head: it is kept in its files, and the process reads the store.
        if !st.queued.is_empty() && st.conflict.is_none() {
            let local = local_head(&ctx.cache, &head, st.queued.iter(), next_seq - 1)
                .map_err(|m| cant(format!("cannot apply the queued transactions: {m}")))?;
            db.set_head(Arc::new(local));
        }
    }
    if db.group.set(Arc::clone(&group)).is_err() {
        return Err(cant("a queue was attached twice".into()));
    }
    let (weak, bg_db, bg_group) = (Arc::downgrade(shared), Arc::clone(db), Arc::clone(&group));
    std::thread::Builder::new()
        .name("vfs-object-upload".into())
        .spawn(move || upload_loop(&weak, &bg_db, &bg_group))
        .map_err(|e| cant(format!("cannot start the upload thread: {e}")))?;
    Ok(group)
}

fn conflict_message(db: &str, dir: &std::path::Path, n: usize, first: u64, lsn: u64) -> String {
    format!(
        "vfs-object: {db:?}: the group commit queue {} holds {n} acknowledged transaction(s) \
         (from number {first}) that can never be published: LSN {lsn} was committed by another \
         writer on the state they were made on. They are kept in {}; writes and object_flush fail \
         until an operator resolves it (docs/object.md, \"Group commit\")",
        dir.display(),
        dir.display()
    )
}

/// What the log says about a queue between two LSNs.
struct Classified {
    /// The newest queued sequence number found in a commit (0: none).
    landed: u64,
    /// The first commit of another writer after the last of ours (void
    /// commits change nothing and do not count).
    foreign: Option<u64>,
}

/// Reads the headers of commits `from + 1 ..= to` (one range GET each, in
/// order) and tells ours from others'.
async fn classify(
    client: &Client,
    keys: &DbKeys,
    from: u64,
    to: u64,
    queue_id: [u8; 8],
) -> std::result::Result<Classified, String> {
    let mut out = Classified {
        landed: 0,
        foreign: None,
    };
    for lsn in from + 1..=to {
        let key = keys.commit(lsn);
        let head = client
            .get_range(&key, 0..HEADER_LEN as u64)
            .await
            .map_err(|e| e.to_string())?;
        let h = format::decode_header(&head).map_err(|e| format!("{key} is damaged: {e}"))?;
        if h.lsn != lsn {
            return Err(format!("{key} says it is LSN {}", h.lsn));
        }
        if h.txid[..8] == queue_id {
            out.landed = out
                .landed
                .max(u64::from_le_bytes(h.txid[8..].try_into().expect("8 bytes")));
            out.foreign = None;
        } else if h.flags & FLAG_VOID == 0 && out.foreign.is_none() {
            out.foreign = Some(lsn);
        }
    }
    Ok(out)
}

/// `published` with the queued transactions applied, their pages pinned
/// in memory; `local_seq` names the state (see [`Version::local_seq`]).
fn local_head<'a>(
    cache: &PageCache,
    published: &Version,
    queued: impl Iterator<Item = &'a Arc<Queued>>,
    local_seq: u64,
) -> std::result::Result<Version, String> {
    let mut v = published.clone();
    let mut any = false;
    for q in queued {
        let info = Arc::new(CommitInfo::of(&q.idx));
        let c = q.idx.header.chunk_size as usize;
        let time_ms = q.idx.header.time_ms;
        v = v.apply(&q.idx, |i, e| {
            let at = q.idx.page_offset(i) as usize;
            cache.pinned_page(&info, i as u32, e.crc, q.body[at..at + c].into())
        })?;
        v.time_ms = time_ms;
        any = true;
    }
    v.lsn = published.lsn;
    v.txid = published.txid;
    v.local_seq = local_seq;
    v.unpublished = any;
    Ok(v)
}

/// The transactions uploaded together next: the oldest, and those after it
/// up to [`BATCH_MAX`] bytes, stopping before one that changes the chunk
/// size (a full image starts its own batch).
fn take_batch(queued: &VecDeque<Arc<Queued>>) -> Vec<Arc<Queued>> {
    let mut batch: Vec<Arc<Queued>> = Vec::new();
    let mut bytes = 0u64;
    for q in queued {
        let full = q.idx.header.flags & FLAG_FULL_IMAGE != 0;
        if !batch.is_empty() && (full || bytes + q.body.len() as u64 > BATCH_MAX) {
            break;
        }
        bytes += q.body.len() as u64;
        batch.push(Arc::clone(q));
    }
    batch
}

/// The batch id: the queue's id and the number of the batch's last
/// transaction (`docs/formats.md`).
fn batch_txid(queue_id: [u8; 8], last: u64) -> [u8; 16] {
    let mut t = [0u8; 16];
    t[..8].copy_from_slice(&queue_id);
    t[8..].copy_from_slice(&last.to_le_bytes());
    t
}

/// One commit object holding `batch` (later transactions win) on top of
/// `published`: exactly the state applying them one by one would give.
fn merge(
    batch: &[Arc<Queued>],
    published: &Version,
    queue_id: [u8; 8],
) -> std::result::Result<(Index, Vec<u8>), String> {
    let last = batch.last().ok_or("empty batch")?;
    let first = &batch[0];
    let full = first.idx.header.flags & FLAG_FULL_IMAGE != 0;
    let c = last.idx.header.chunk_size as usize;
    let mut pages: BTreeMap<u32, &[u8]> = BTreeMap::new();
    let mut min_count = u64::MAX;
    for q in batch {
        let count = q.idx.header.chunk_count();
        // Cut off by this transaction (it shrank the file).
        let _ = pages.split_off(&u32::try_from(count).unwrap_or(u32::MAX));
        min_count = min_count.min(count);
        for (i, e) in q.idx.entries.iter().enumerate() {
            let at = q.idx.page_offset(i) as usize;
            pages.insert(e.chunk, &q.body[at..at + c]);
        }
    }
    // A file shrunk and grown again inside the batch: the published pages
    // between the low point and the end were cut, so they read as zeros.
    let zeros = vec![0u8; c];
    let final_count = last.idx.header.chunk_count();
    if !full && published.chunk_size as usize == c {
        let published_count = published.size.div_ceil(c as u64);
        for k in min_count..final_count.min(published_count) {
            pages.entry(k as u32).or_insert(&zeros);
        }
    }
    let pages: Vec<(u32, &[u8])> = pages.into_iter().collect();
    let body = format::encode(&NewCommit {
        lsn: published.lsn + 1,
        txid: batch_txid(queue_id, last.seq),
        db_size: last.idx.header.db_size,
        chunk_size: c as u32,
        time_ms: last.idx.header.time_ms.max(published.time_ms),
        flags: if full { FLAG_FULL_IMAGE } else { 0 },
        pages: &pages,
    });
    let idx = format::decode_index(&body, Some(body.len() as u64)).map_err(|e| e.to_string())?;
    Ok((idx, body))
}

impl Group {
    /// The store state the queue is uploaded onto.
    pub(crate) fn published(&self) -> Arc<Version> {
        Arc::clone(&self.state.lock().published)
    }

    /// Stops the uploader (the VFS is gone).
    pub(crate) fn stop(&self) {
        self.state.lock().stop = true;
        self.changed.notify_all();
    }

    /// The error every write meets once the queue is in conflict.
    pub(crate) fn conflict(&self) -> Option<Error> {
        self.state.lock().conflict.clone().map(io_write)
    }

    /// Queues a transaction made on `base` (encoded as `idx`/`body`):
    /// durable in the directory when this returns, and part of the head.
    /// With `wait`, returns only once it is in the store.
    pub(crate) fn enqueue(
        &self,
        db: &Db,
        ctx: &Ctx,
        base: &Version,
        idx: Index,
        body: Vec<u8>,
        wait: bool,
    ) -> Result<Arc<Version>> {
        let mut st = self.state.lock();
        let size = body.len() as u64;
        // Past `queue_max`, COMMIT waits for the uploader to make room.
        while !st.queued.is_empty()
            && st.queued_bytes + size > self.queue_max
            && st.conflict.is_none()
            && !st.stop
        {
            self.changed.wait(&mut st);
        }
        if let Some(c) = &st.conflict {
            return Err(io_write(c.clone()));
        }
        let head = db.head();
        if !head.same_state(base) {
            return Err(Error::new(
                codes::SQLITE_BUSY_SNAPSHOT,
                format!(
                    "vfs-object: {:?}: LSN {} was committed while this transaction ran on LSN {}; \
                     it was rolled back: retry it",
                    self.name, head.lsn, base.lsn
                ),
            ));
        }
        if st.queued.is_empty() {
            // Nothing queued: the head is a store state (caught up since
            // the last upload, perhaps), and the queue goes on top of it.
            st.published = Arc::clone(&head);
        }
        let seq = st.next_seq;
        let file = QueueFile {
            seq,
            queue_id: st.queue_id,
            base_lsn: st.published.lsn,
            db_key: db.keys.log_dir().to_string(),
            body,
        };
        let path = queue::write(&self.dir, &file).map_err(|e| {
            io_write(format!(
                "vfs-object: {:?}: the transaction was NOT committed: cannot write it to the \
                 queue directory {}: {e}",
                self.name,
                self.dir.display()
            ))
        })?;
        let q = Arc::new(Queued {
            seq,
            idx,
            body: file.body,
            path,
        });
        let local = local_head(&ctx.cache, &head, std::iter::once(&q), seq)
            .map(|mut v| {
                v.lsn = st.published.lsn;
                v.txid = st.published.txid;
                v
            })
            .map_err(|m| {
                io_write(format!(
                    "vfs-object: {:?}: queued transaction {seq} cannot be applied: {m}",
                    self.name
                ))
            })?;
        st.next_seq += 1;
        st.queued_bytes += size;
        st.queued.push_back(q);
        let local = Arc::new(local);
        db.set_head(Arc::clone(&local));
        self.changed.notify_all();
        if wait {
            while st.landed < seq {
                if let Some(c) = &st.conflict {
                    return Err(io_write(c.clone()));
                }
                if st.stop {
                    break;
                }
                self.changed.wait(&mut st);
            }
        }
        Ok(local)
    }

    /// Waits until everything queued when called is in the store; the LSN
    /// reached. An upload round that fails meanwhile, or a conflict, is an
    /// error (the queue is kept and the upload goes on).
    pub(crate) fn flush(&self) -> Result<u64> {
        let mut st = self.state.lock();
        st.kick = true;
        self.changed.notify_all();
        let target = st.next_seq - 1;
        let rounds = st.failed_rounds;
        loop {
            if let Some(c) = &st.conflict {
                return Err(io_write(c.clone()));
            }
            if st.landed >= target {
                return Ok(st.published.lsn);
            }
            if st.failed_rounds > rounds {
                return Err(io_write(format!(
                    "vfs-object: {:?}: {} queued transaction(s) are not in the store yet: {}; \
                     they stay in {} and the upload goes on",
                    self.name,
                    st.queued.len(),
                    st.last_error,
                    self.dir.display()
                )));
            }
            if st.stop {
                return Err(io_write(format!(
                    "vfs-object: {:?}: the uploader has stopped",
                    self.name
                )));
            }
            self.changed.wait(&mut st);
        }
    }

    /// Whether the queue holds transactions.
    pub(crate) fn holds_transactions(&self) -> bool {
        !self.state.lock().queued.is_empty()
    }

    /// Records that the queue up to `upto` is in the store as `version`:
    /// deletes its files and rebuilds the head on `version`; then, when
    /// that emptied the queue, releases the writer lease it held, and
    /// wakes the waiters (a flush returns after the release).
    fn landed(&self, shared: &Shared, db: &Db, version: Arc<Version>, upto: u64) {
        let cache = &shared.ctx.cache;
        let (drained, done) = self.record_landed(db, cache, &version, upto);
        // Outside the lock (commits wait for it): a file left behind by a
        // crash here is recognised as uploaded at the next start.
        let _ = queue::remove(&self.dir, &done);
        crate::lease::committed(db, shared, version.lsn);
        if drained {
            crate::lease::queue_drained(db, shared);
        }
        self.changed.notify_all();
    }

    fn record_landed(
        &self,
        db: &Db,
        cache: &PageCache,
        version: &Arc<Version>,
        upto: u64,
    ) -> (bool, Vec<PathBuf>) {
        let mut st = self.state.lock();
        let mut done = Vec::new();
        while st.queued.front().is_some_and(|q| q.seq <= upto) {
            let q = st.queued.pop_front().expect("front");
            st.queued_bytes -= q.body.len() as u64;
            done.push(q.path.clone());
        }
        st.published = Arc::clone(version);
        st.landed = st.landed.max(upto);
        let local_seq = st.next_seq - 1;
        match local_head(cache, version, st.queued.iter(), local_seq) {
            Ok(v) => db.set_head(Arc::new(v)),
            Err(m) => {
                st.conflict = Some(format!(
                    "vfs-object: {:?}: the queue in {} cannot be applied on LSN {}: {m}",
                    self.name,
                    self.dir.display(),
                    version.lsn
                ));
            }
        }
        (st.queued.is_empty(), done)
    }

    /// Uploads the next batch; on any failure, finds out from the store
    /// what happened. `Err` is a failed round (retried after a backoff).
    fn upload_next(&self, shared: &Arc<Shared>, db: &Arc<Db>) -> std::result::Result<(), String> {
        let (batch, published, queue_id) = {
            let st = self.state.lock();
            (
                take_batch(&st.queued),
                Arc::clone(&st.published),
                st.queue_id,
            )
        };
        let Some(last) = batch.last().map(|q| q.seq) else {
            return Ok(());
        };
        let ctx = &shared.ctx;
        let (idx, body) = merge(&batch, &published, queue_id)?;
        let failure = match db.publish_only(ctx, &published, idx, body) {
            Published::Committed(v) => {
                self.landed(shared, db, Arc::clone(&v), last);
                crate::compact::maybe_compact(shared, db, v.lsn, self.compaction);
                return Ok(());
            }
            Published::Failed(e) => e.message().to_owned(),
        };
        // Lost its race, fenced, or unknown: read what the log holds now.
        let (client, cache, keys) = (ctx.client.clone(), Arc::clone(&ctx.cache), db.keys.clone());
        let from = Arc::clone(&published);
        let looked = ctx.runtime.run(async move {
            let listed = client
                .list_after(keys.log_dir(), &keys.commit(from.lsn))
                .await
                .map_err(|e| e.to_string())?;
            let mut found: Vec<(u64, u64)> = listed
                .iter()
                .filter_map(|m| keys.lsn_of(&m.location).map(|l| (l, m.size)))
                .collect();
            found.sort_unstable();
            let Some(&(to, _)) = found.last() else {
                return Ok(None);
            };
            let classified = classify(&client, &keys, from.lsn, to, queue_id).await?;
            let (version, _) = plan_catch_up(&client, &cache, &keys, from, &found)
                .await
                .map_err(|e| format!("{e:?}"))?;
            Ok::<_, String>(Some((classified, version)))
        });
        let looked = looked.map_err(|e| e.message().to_owned())?;
        let (classified, version) = match looked {
            Ok(Some(x)) => x,
            Ok(None) => return Err(failure),
            Err(e) => return Err(format!("{failure}; reading the log back failed: {e}")),
        };
        if classified.landed >= batch[0].seq {
            self.landed(shared, db, version, classified.landed);
            return Ok(());
        }
        if let Some(lsn) = classified.foreign {
            let mut st = self.state.lock();
            let first = st.queued.front().map_or(0, |q| q.seq);
            st.conflict = Some(conflict_message(
                &self.name,
                &self.dir,
                st.queued.len(),
                first,
                lsn,
            ));
            self.changed.notify_all();
            return Ok(());
        }
        // Only void commits (fences) since: upload on top of them.
        self.state.lock().published = version;
        Err(failure)
    }
}

/// The uploader: uploads while the queue holds transactions, backs off
/// after a failed round (a flush cuts the wait short), and ends with the
/// VFS.
fn upload_loop(shared: &Weak<Shared>, db: &Arc<Db>, group: &Group) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        {
            let mut st = group.state.lock();
            while !st.stop && (st.queued.is_empty() || st.conflict.is_some()) {
                group.changed.wait(&mut st);
            }
            if st.stop {
                return;
            }
            st.kick = false;
        }
        let Some(strong) = shared.upgrade() else {
            return;
        };
        let round = group.upload_next(&strong, db);
        // Dropped before locking: the last handle's drop stops the group.
        drop(strong);
        match round {
            Ok(()) => backoff = FIRST_BACKOFF,
            Err(e) => {
                let mut st = group.state.lock();
                st.failed_rounds += 1;
                st.last_error = e;
                group.changed.notify_all();
                let until = Instant::now() + backoff;
                while !st.stop && !st.kick {
                    if group.changed.wait_until(&mut st, until).timed_out() {
                        break;
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}
