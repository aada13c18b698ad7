//! Writer leases (`docs/object.md`, "Writer leases"): an optional lease object that a
//! process takes when SQLite takes the write lock, so that under
//! contention writers wait for each other (`SQLITE_BUSY`, SQLite's busy
//! handler) instead of doing work that loses its commit race.
//!
//! The lease is an optimisation and a fence, never the commit's
//! correctness: commits still publish with a conditional create of
//! `log/<n+1>` alone. A taker that takes an *expired* lease over (its
//! holder may be stalled in the middle of a commit) first fences the log:
//! it creates a void commit at the head's next LSN, so every transaction
//! the old holder began before the takeover would publish at an LSN that
//! is now taken, and fails. Its later transactions begin on a snapshot
//! that contains a commit it did not make, which makes it check its lease
//! in the store before it may commit.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use object_store::path::Path;
use object_store::{PutMode, UpdateVersion};
use tokio::sync::{Mutex as AsyncMutex, OwnedMutexGuard};
use vfs_core::{Error, Result, codes};

use crate::Shared;
use crate::client::{Client, FailureKind, StoreError};
use crate::db::{Db, apply_commit};
use crate::format;
use crate::version::Version;

/// A wall clock in milliseconds since the Unix epoch: lease expiry times
/// are written and judged with it. Injectable so tests can move time
/// without sleeping ([`ObjectOptions::clock`](crate::ObjectOptions::clock)).
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use vfs_object::Clock;
///
/// #[derive(Debug, Default)]
/// struct Manual(AtomicU64);
/// impl Clock for Manual {
///     fn now_ms(&self) -> u64 {
///         self.0.load(Ordering::Relaxed)
///     }
/// }
/// let c = Manual::default();
/// c.0.store(5_000, Ordering::Relaxed);
/// assert_eq!(c.now_ms(), 5_000);
/// ```
pub trait Clock: Send + Sync + fmt::Debug {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system's wall clock (the default [`Clock`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// Bytes of a lease object (`docs/formats.md`).
pub const LEASE_LEN: usize = 48;
const MAGIC: &[u8; 8] = b"VOBJLEAS";
const LEASE_VERSION: u16 = 1;
const FLAG_RELEASED: u16 = 1;

/// What a lease object says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LeaseRecord {
    /// The holder's id (random, one per `ObjectVfs`).
    pub holder: [u8; 16],
    /// When it expires, by the holder's clock.
    pub expires_ms: u64,
    /// The newest LSN the holder knew when it wrote the record.
    pub lsn: u64,
    /// Given up by its holder: anyone may take it at once.
    pub released: bool,
}

impl LeaseRecord {
    pub fn encode(&self) -> Bytes {
        let mut b = Vec::with_capacity(LEASE_LEN);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&LEASE_VERSION.to_le_bytes());
        let flags = if self.released { FLAG_RELEASED } else { 0 };
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&self.holder);
        b.extend_from_slice(&self.expires_ms.to_le_bytes());
        b.extend_from_slice(&self.lsn.to_le_bytes());
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(b.len(), LEASE_LEN);
        Bytes::from(b)
    }

    /// Fails closed: anything but a well-formed version-1 record is an
    /// error.
    pub fn decode(b: &[u8]) -> std::result::Result<LeaseRecord, String> {
        if b.len() != LEASE_LEN {
            return Err(format!("{} bytes, not {LEASE_LEN}", b.len()));
        }
        if &b[..8] != MAGIC {
            return Err("not a vfs-object lease (bad magic)".into());
        }
        let le64 = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        let crc = u32::from_le_bytes(b[44..48].try_into().expect("4 bytes"));
        if crc != crc32fast::hash(&b[..44]) {
            return Err("CRC-32 mismatch".into());
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != LEASE_VERSION {
            return Err(format!(
                "lease version {version} (this build reads {LEASE_VERSION})"
            ));
        }
        let flags = u16::from_le_bytes([b[10], b[11]]);
        if flags & !FLAG_RELEASED != 0 {
            return Err(format!("unknown flags {flags:#x}"));
        }
        Ok(LeaseRecord {
            holder: b[12..28].try_into().expect("16 bytes"),
            expires_ms: le64(28),
            lsn: le64(36),
            released: flags & FLAG_RELEASED != 0,
        })
    }
}

/// The lease object as this process last wrote it.
#[derive(Clone)]
struct Written {
    record: LeaseRecord,
    body: Bytes,
    version: UpdateVersion,
}

#[derive(Default)]
struct LeaseState {
    /// What this process last wrote (held or released); its version lets
    /// the next write be a compare-and-swap without reading first.
    ours: Option<Written>,
    /// This process holds the lease (as far as it knows).
    held: bool,
    /// Why the lease was lost (seen by a heartbeat or a check).
    lost: Option<String>,
    /// The newest LSN this process knows nobody else committed after
    /// (no commit of another writer since the lease was taken).
    known_lsn: u64,
    /// A write transaction of this process uses the lease now.
    active: bool,
    /// The group commit queue holds transactions of a lease holder: kept
    /// (heartbeats go on) until it is uploaded (`group.rs`).
    queue_holds: bool,
    /// Taken over from an expired holder and the log not fenced yet.
    fence_due: bool,
    /// Bumped at every acquisition and loss: stale heartbeats stop.
    epoch: u64,
    /// Bumped whenever a transaction starts or ends: a delayed release
    /// only fires for the latest end.
    ticket: u64,
    ttl: Duration,
}

/// One database's lease, as one `ObjectVfs` sees it.
pub(crate) struct LeaseSlot {
    key: Path,
    state: Arc<AsyncMutex<LeaseState>>,
}

/// How a lease write ended.
enum Cas {
    Done(Written),
    /// The condition failed (someone else wrote it), and the object is
    /// not what we tried to write.
    Lost(Option<LeaseRecord>),
}

impl LeaseSlot {
    pub fn new(key: Path) -> LeaseSlot {
        LeaseSlot {
            key,
            state: Arc::default(),
        }
    }

    /// The state, locked from a synchronous caller. The guard is awaited on
    /// the backend's runtime, so heartbeats (which lock it there) and the
    /// caller never block a runtime thread on each other.
    fn lock(&self, fs: &Shared) -> Result<OwnedMutexGuard<LeaseState>> {
        let m = Arc::clone(&self.state);
        fs.ctx.runtime.run(async move { m.lock_owned().await })
    }
}

fn margin(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64) / 5
}

/// The holder judges its own lease valid until a fifth of the TTL before
/// it expires, so a commit checked as valid publishes well within it.
fn locally_valid(st: &LeaseState, now: u64) -> bool {
    match &st.ours {
        Some(w) if st.held && st.lost.is_none() && !w.record.released => {
            now.saturating_add(margin(st.ttl)) < w.record.expires_ms
        }
        _ => false,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn lease_error(db: &Db, e: &StoreError) -> Error {
    Error::new(
        codes::SQLITE_IOERR_LOCK,
        format!("vfs-object: {:?}: writer lease: {e}", db.name),
    )
}

/// Writes `body` at `key` with `mode`; a broken condition is resolved by
/// reading the object back (a retry of a write that landed finds its own
/// bytes there).
async fn write_lease(
    client: &Client,
    key: &Path,
    record: LeaseRecord,
    mode: PutMode,
) -> std::result::Result<Cas, StoreError> {
    let body = record.encode();
    match client.put_conditional(key, body.clone(), mode).await {
        Ok(version) => Ok(Cas::Done(Written {
            record,
            body,
            version,
        })),
        Err(e) if matches!(e.kind, FailureKind::Exists | FailureKind::NotFound) => {
            match client.get_versioned(key).await? {
                Some((b, version)) if b == body => Ok(Cas::Done(Written {
                    record,
                    body,
                    version,
                })),
                Some((b, _)) => Ok(Cas::Lost(LeaseRecord::decode(&b).ok())),
                None => Ok(Cas::Lost(None)),
            }
        }
        Err(e) => Err(e),
    }
}

/// Takes (or keeps) the lease for a write transaction of `db` reading LSN
/// `snapshot`, at SQLite's RESERVED lock. `SQLITE_BUSY` while another
/// holder's lease is live (SQLite's busy handler waits and retries);
/// `SQLITE_BUSY_SNAPSHOT` when taking it showed commits newer than the
/// snapshot (the lease is kept: the retry, on a fresh snapshot, finds it
/// held).
pub(crate) fn take(db: &Db, fs: &Shared, ttl: Duration, snapshot: u64) -> Result<()> {
    let mut st = db.lease.lock(fs)?;
    st.ticket += 1;
    let r = take_locked(db, fs, &mut st, ttl, snapshot);
    if r.is_err() && st.held && !st.active {
        // Held but not used (the snapshot was stale, or looking at the log
        // failed): kept briefly for SQLite's retry, released if none comes.
        drop(st);
        schedule_release(db, fs, fs.lease_linger.max(STALE_LINGER));
    }
    r
}

fn take_locked(
    db: &Db,
    fs: &Shared,
    st: &mut LeaseState,
    ttl: Duration,
    snapshot: u64,
) -> Result<()> {
    let slot = &db.lease;
    st.ttl = ttl;
    let clock = Arc::clone(&fs.clock);
    let now = clock.now_ms();
    if locally_valid(st, now) && st.known_lsn == snapshot && !st.fence_due {
        renew_if_due(db, fs, st, now)?;
        if st.held {
            st.active = true;
            return Ok(());
        }
    }
    let holder = fs.holder;
    let record = LeaseRecord {
        holder,
        expires_ms: now.saturating_add(ttl.as_millis() as u64),
        lsn: snapshot,
        released: false,
    };
    let client = fs.ctx.client.clone();
    let key = slot.key.clone();
    let guess = st.ours.clone();
    let taken = fs.ctx.runtime.run(async move {
        // First try: our own last write is still there (the common case of
        // one writer taking it again). Then read what is there and decide.
        if let Some(w) = guess
            && let Cas::Done(w) =
                write_lease(&client, &key, record, PutMode::Update(w.version.clone())).await?
        {
            return Ok(Ok((w, false, true)));
        }
        for _ in 0..4 {
            let current = client.get_versioned(&key).await?;
            let (mode, takeover) = match current {
                None => (PutMode::Create, false),
                Some((bytes, version)) => {
                    let rec = LeaseRecord::decode(&bytes).map_err(|m| StoreError {
                        kind: FailureKind::Permanent,
                        request: format!("GET {key}"),
                        message: format!("the lease object is damaged: {m}"),
                    })?;
                    let other = rec.holder != holder && !rec.released;
                    if other && rec.expires_ms > now {
                        return Ok(Err(rec));
                    }
                    (PutMode::Update(version), other)
                }
            };
            match write_lease(&client, &key, record, mode).await? {
                Cas::Done(w) => return Ok(Ok((w, takeover, false))),
                Cas::Lost(Some(rec)) if rec.holder != holder && !rec.released => {
                    return Ok(Err(rec));
                }
                Cas::Lost(_) => continue,
            }
        }
        Err(StoreError {
            kind: FailureKind::Transient,
            request: format!("PUT {key}"),
            message: "the lease changed under every attempt to take it".into(),
        })
    })?;
    let (written, takeover, own) = match taken {
        Ok(Ok(x)) => x,
        Ok(Err(rec)) => {
            return Err(Error::busy(format!(
                "vfs-object: {:?}: writer {} holds the lease {} for {} ms more",
                db.name,
                hex(&rec.holder[..8]),
                slot.key,
                rec.expires_ms.saturating_sub(now)
            )));
        }
        Err(e) => return Err(lease_error(db, &e)),
    };
    st.ours = Some(written);
    st.held = true;
    st.lost = None;
    st.epoch += 1;
    st.fence_due |= takeover;
    start_heartbeat(db, fs, st.epoch, ttl);
    // Whatever the previous holder committed is in the log now: read it,
    // so the transaction starts from the newest state or retries at once.
    // Not when the compare-and-swap on this process's own last write
    // succeeded: nobody wrote the lease since, so no other holder
    // committed, and this process's commits are in its head. (A writer
    // without a lease may have; the conditional create decides that race,
    // as it always does: this look only saves wasted work.)
    let mut head = if own && !st.fence_due {
        db.head()
    } else {
        db.read_state(&fs.ctx, Duration::ZERO, codes::SQLITE_IOERR_LOCK)?
    };
    if st.fence_due {
        head = fence(db, fs, head)?;
        st.fence_due = false;
    }
    st.known_lsn = head.lsn;
    if head.lsn != snapshot {
        return Err(Error::new(
            codes::SQLITE_BUSY_SNAPSHOT,
            format!(
                "vfs-object: {:?}: this transaction reads LSN {snapshot} but LSN {} is committed; \
                 end the transaction and retry (this connection now holds the writer lease)",
                db.name, head.lsn
            ),
        ));
    }
    st.active = true;
    Ok(())
}

/// After taking an expired lease over: a void commit at the head's next
/// LSN, so nothing the old holder began before can publish.
fn fence(db: &Db, fs: &Shared, mut head: Arc<Version>) -> Result<Arc<Version>> {
    for _ in 0..4 {
        let lsn = head.lsn + 1;
        let body = format::encode(&format::NewCommit {
            lsn,
            txid: rand::random(),
            db_size: head.size,
            chunk_size: if head.chunk_size == 0 {
                4096
            } else {
                head.chunk_size
            },
            time_ms: fs.clock.now_ms(),
            flags: format::FLAG_VOID,
            pages: &[],
        });
        let client = fs.ctx.client.clone();
        let key = db.keys.commit(lsn);
        let b = Bytes::from(body.clone());
        let put = fs
            .ctx
            .runtime
            .run(async move { client.put_create(&key, b).await })?;
        match put {
            Ok(()) => {
                let idx = format::decode_index(&body, Some(body.len() as u64)).map_err(|e| {
                    Error::new(codes::SQLITE_IOERR_LOCK, format!("vfs-object: fence: {e}"))
                })?;
                let v = apply_commit(&fs.ctx.cache, &head, &idx, Some(&body))
                    .map_err(|m| Error::new(codes::SQLITE_IOERR_LOCK, m))?;
                let v = Arc::new(v);
                db.install(&v);
                return Ok(v);
            }
            // Taken (the old holder's last commit, or a lost response of
            // ours): read the log again and fence after it.
            Err(e) if e.kind == FailureKind::Exists || e.kind == FailureKind::Transient => {
                db.mark_refresh_due();
                head = db.read_state(&fs.ctx, Duration::ZERO, codes::SQLITE_IOERR_LOCK)?;
            }
            Err(e) => return Err(lease_error(db, &e)),
        }
    }
    Err(Error::new(
        codes::SQLITE_IOERR_LOCK,
        format!(
            "vfs-object: {:?}: could not fence the log after taking the writer lease over",
            db.name
        ),
    ))
}

/// Renews the lease when less than half its TTL is left (one PUT).
fn renew_if_due(db: &Db, fs: &Shared, st: &mut LeaseState, now: u64) -> Result<()> {
    let Some(w) = st.ours.clone() else {
        return Ok(());
    };
    let ttl_ms = st.ttl.as_millis() as u64;
    if w.record.expires_ms.saturating_sub(now) > ttl_ms / 2 {
        return Ok(());
    }
    renew(db, fs, st, w, now)
}

fn renew(db: &Db, fs: &Shared, st: &mut LeaseState, w: Written, now: u64) -> Result<()> {
    let record = LeaseRecord {
        expires_ms: now.saturating_add(st.ttl.as_millis() as u64),
        ..w.record
    };
    let client = fs.ctx.client.clone();
    let key = db.lease.key.clone();
    let r = fs
        .ctx
        .runtime
        .run(async move { write_lease(&client, &key, record, PutMode::Update(w.version)).await })?;
    match r {
        Ok(Cas::Done(w)) => st.ours = Some(w),
        Ok(Cas::Lost(rec)) => lose(st, rec),
        Err(e) => return Err(lease_error(db, &e)),
    }
    Ok(())
}

fn lose(st: &mut LeaseState, rec: Option<LeaseRecord>) {
    st.held = false;
    st.epoch += 1;
    st.lost = Some(match rec {
        Some(r) => format!(
            "writer {} took it over (at LSN {})",
            hex(&r.holder[..8]),
            r.lsn
        ),
        None => "its object changed or vanished".into(),
    });
}

/// Checks, before the commit PUT of a transaction reading `base_lsn`, that
/// this process still holds the lease. Costs no request while the lease is
/// locally valid and nobody else committed since it was taken; otherwise
/// one GET (and a renewal PUT). A lost lease fails the commit with
/// `SQLITE_BUSY_SNAPSHOT`: nothing is published.
pub(crate) fn check_before_commit(db: &Db, fs: &Shared, base_lsn: u64) -> Result<()> {
    let mut st = db.lease.lock(fs)?;
    let now = fs.clock.now_ms();
    if st.held && locally_valid(&st, now) && st.known_lsn == base_lsn {
        return renew_if_due(db, fs, &mut st, now);
    }
    if st.held
        && let Some(w) = st.ours.clone()
    {
        let client = fs.ctx.client.clone();
        let key = db.lease.key.clone();
        let current = fs
            .ctx
            .runtime
            .run(async move { client.get_versioned(&key).await })?
            .map_err(|e| lease_error(db, &e))?;
        match current {
            Some((b, version)) if b == w.body => {
                renew(db, fs, &mut st, Written { version, ..w }, now)?;
            }
            Some((b, _)) => lose(&mut st, LeaseRecord::decode(&b).ok()),
            None => lose(&mut st, None),
        }
    }
    if st.held {
        return Ok(());
    }
    db.mark_refresh_due();
    Err(Error::new(
        codes::SQLITE_BUSY_SNAPSHOT,
        format!(
            "vfs-object: {:?}: this writer lost its lease {} ({}): the transaction was rolled back \
             and nothing of it was stored",
            db.name,
            db.lease.key,
            st.lost.as_deref().unwrap_or("it expired")
        ),
    ))
}

/// Records that this process committed `lsn` while holding the lease.
pub(crate) fn committed(db: &Db, fs: &Shared, lsn: u64) {
    if let Ok(mut st) = db.lease.lock(fs)
        && st.held
    {
        st.known_lsn = lsn;
    }
}

/// Ends a write transaction's use of the lease: released now, or after
/// [`ObjectOptions::lease_linger`](crate::ObjectOptions::lease_linger) if
/// no other transaction of this process takes it meanwhile.
pub(crate) fn end_transaction(db: &Db, fs: &Shared) {
    let Ok(mut st) = db.lease.lock(fs) else {
        return;
    };
    st.active = false;
    drop(st);
    schedule_release(db, fs, fs.lease_linger);
}

/// Ends a write transaction whose commit is queued (group commit): the
/// lease stays held, renewed by its heartbeat, until [`queue_drained`].
/// `queue_holds` is asked under the lease's lock, so an upload that
/// empties the queue meanwhile either sees the hold or makes it unneeded.
pub(crate) fn end_transaction_queued(db: &Db, fs: &Shared, queue_holds: impl Fn() -> bool) {
    let Ok(mut st) = db.lease.lock(fs) else {
        return;
    };
    if st.held && queue_holds() {
        st.active = false;
        st.queue_holds = true;
        return;
    }
    drop(st);
    end_transaction(db, fs);
}

/// The queue is uploaded: the lease it held is released like at the end
/// of a transaction (now, or after the linger).
pub(crate) fn queue_drained(db: &Db, fs: &Shared) {
    let Ok(mut st) = db.lease.lock(fs) else {
        return;
    };
    if !std::mem::take(&mut st.queue_holds) {
        return;
    }
    drop(st);
    schedule_release(db, fs, fs.lease_linger);
}

/// How long a lease taken for a transaction that must retry (its snapshot
/// was stale, or looking at the log failed) is kept for the retry.
const STALE_LINGER: Duration = Duration::from_millis(100);

fn schedule_release(db: &Db, fs: &Shared, linger: Duration) {
    let Ok(mut st) = db.lease.lock(fs) else {
        return;
    };
    if !st.held || st.active || st.queue_holds {
        return;
    }
    st.ticket += 1;
    if linger.is_zero() {
        let (client, key) = (fs.ctx.client.clone(), db.lease.key.clone());
        let now = fs.clock.now_ms();
        // A failed release only makes others wait for the TTL.
        let _ = fs
            .ctx
            .runtime
            .run(async move { release(&client, &key, &mut st, now).await });
        return;
    }
    let ticket = st.ticket;
    let state = Arc::clone(&db.lease.state);
    let (client, key, clock) = (
        fs.ctx.client.clone(),
        db.lease.key.clone(),
        Arc::clone(&fs.clock),
    );
    drop(st);
    fs.ctx.runtime.spawn(async move {
        tokio::time::sleep(linger).await;
        let mut st = state.lock_owned().await;
        if st.ticket == ticket && !st.active && !st.queue_holds && st.held {
            release(&client, &key, &mut st, clock.now_ms()).await;
        }
    });
}

async fn release(client: &Client, key: &Path, st: &mut LeaseState, now: u64) {
    let Some(w) = st.ours.clone() else {
        return;
    };
    st.held = false;
    st.epoch += 1;
    let record = LeaseRecord {
        released: true,
        expires_ms: now,
        ..w.record
    };
    st.ours = match write_lease(client, key, record, PutMode::Update(w.version)).await {
        Ok(Cas::Done(w)) => Some(w),
        _ => None,
    };
}

/// Releases the lease if this process holds it and no transaction uses
/// it (one PUT): called when the `ObjectVfs` goes away, so other
/// processes need not wait out a linger or the TTL, which no heartbeat or
/// delayed release of this process can end any more.
pub(crate) fn release_at_exit(db: &Db, fs: &Shared) {
    // No request (and no trip through the runtime) for a lease never held.
    if db.lease.state.try_lock().is_ok_and(|st| !st.held) {
        return;
    }
    let state = Arc::clone(&db.lease.state);
    let (client, key) = (fs.ctx.client.clone(), db.lease.key.clone());
    let now = fs.clock.now_ms();
    // A failed release only makes others wait for the TTL.
    let _ = fs.ctx.runtime.run(async move {
        let mut st = state.lock_owned().await;
        if st.held && !st.active {
            st.ticket += 1;
            release(&client, &key, &mut st, now).await;
        }
    });
}

/// Renews the lease every third of its TTL while this process holds it
/// (a long transaction keeps it); stops when it is released or lost.
fn start_heartbeat(db: &Db, fs: &Shared, epoch: u64, ttl: Duration) {
    let state = Arc::clone(&db.lease.state);
    let (client, key, clock) = (
        fs.ctx.client.clone(),
        db.lease.key.clone(),
        Arc::clone(&fs.clock),
    );
    let period = (ttl / 3).max(Duration::from_millis(10));
    fs.ctx.runtime.spawn(async move {
        loop {
            tokio::time::sleep(period).await;
            let mut st = state.lock().await;
            if st.epoch != epoch || !st.held {
                return;
            }
            let Some(w) = st.ours.clone() else { return };
            let record = LeaseRecord {
                expires_ms: clock.now_ms().saturating_add(ttl.as_millis() as u64),
                ..w.record
            };
            match write_lease(&client, &key, record, PutMode::Update(w.version)).await {
                Ok(Cas::Done(w)) => st.ours = Some(w),
                Ok(Cas::Lost(rec)) => {
                    lose(&mut st, rec);
                    return;
                }
                // Retried at the next beat; the commit check covers a lease
                // that expires meanwhile.
                Err(_) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_records_round_trip_and_refuse_every_damage() {
        let r = LeaseRecord {
            holder: [7; 16],
            expires_ms: 1_700_000_000_123,
            lsn: 42,
            released: false,
        };
        let b = r.encode();
        assert_eq!(b.len(), LEASE_LEN);
        assert_eq!(LeaseRecord::decode(&b).unwrap(), r);
        let rel = LeaseRecord {
            released: true,
            ..r
        };
        assert_eq!(LeaseRecord::decode(&rel.encode()).unwrap(), rel);
        for i in 0..LEASE_LEN {
            let mut d = b.to_vec();
            d[i] ^= 0x10;
            assert!(
                LeaseRecord::decode(&d).is_err(),
                "byte {i} flipped accepted"
            );
        }
        assert!(LeaseRecord::decode(&b[..47]).is_err());
    }
}
