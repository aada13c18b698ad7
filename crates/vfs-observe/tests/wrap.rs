//! `Wrap` and the recorders, through rusqlite.
//!
//! The test backend below is a small in-memory VFS shared by every
//! connection of the process (LockManager locks, ShmGroup WAL), which counts
//! every call it receives and can be told to fail syncs or writes. The
//! wrapper's reports are compared with what the backend itself saw.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, ErrorCode, OpenFlags};
use vfs_core::codes::*;
use vfs_core::{
    AccessCheck, Control, Error, File, FileControl, FileKind, FileLock, FileName, FileNameBuf,
    LockLevel, LockManager, Native, Op, OpenAccess, OpenName, OpenOptions, Result, ShmGroup,
    ShmSupport, SyncFlags, Vfs, register,
};
use vfs_observe::{Event, Recorder, StatsRecorder, Wrap, register_observed};

// ---------------------------------------------------------------------------
// The counting test backend

/// (op, kind) → (calls, bytes moved by successful calls, failed calls).
type Tally = BTreeMap<(String, Option<&'static str>), (u64, u64, u64)>;

fn tally_key(op: Op, kind: Option<FileKind>) -> (String, Option<&'static str>) {
    (op.name().to_owned(), kind.map(FileKind::name))
}

#[derive(Default)]
struct Counter(Mutex<Tally>);

impl Counter {
    fn add(&self, op: Op, kind: Option<FileKind>, bytes: u64, failed: bool) {
        let mut t = self.0.lock().unwrap();
        let e = t.entry(tally_key(op, kind)).or_default();
        e.0 += 1;
        if failed {
            e.2 += 1;
        } else {
            e.1 += bytes;
        }
    }
    fn take(&self) -> Tally {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    fn get(&self, op: Op, kind: Option<FileKind>) -> (u64, u64, u64) {
        self.0
            .lock()
            .unwrap()
            .get(&tally_key(op, kind))
            .copied()
            .unwrap_or_default()
    }
}

/// A recorder that keeps the same tally as the backend, from events.
#[derive(Default)]
struct TallyRecorder(Counter);

impl Recorder for TallyRecorder {
    fn record(&self, e: &Event<'_>) {
        self.0.add(e.op, e.kind, e.bytes, e.is_error());
    }
}

/// A recorder that keeps every event (owned), for assertions on fields.
#[derive(Default)]
struct LogRecorder(Mutex<Vec<Owned>>);

#[derive(Clone, Debug)]
struct Owned {
    op: Op,
    file: String,
    kind: Option<FileKind>,
    offset: u64,
    bytes: u64,
    code: i32,
    timed: bool,
}

impl Recorder for LogRecorder {
    fn record(&self, e: &Event<'_>) {
        self.0.lock().unwrap().push(Owned {
            op: e.op,
            file: e.file.to_string(),
            kind: e.kind,
            offset: e.offset,
            bytes: e.bytes,
            code: e.code,
            timed: e.elapsed.is_some(),
        });
    }
}

impl LogRecorder {
    fn events(&self) -> Vec<Owned> {
        self.0.lock().unwrap().clone()
    }
}

struct Data {
    bytes: Mutex<Vec<u8>>,
    lock: Arc<LockManager>,
    shm: Arc<ShmGroup>,
}

impl Data {
    fn new() -> Arc<Data> {
        Arc::new(Data {
            bytes: Mutex::new(Vec::new()),
            lock: LockManager::new(),
            shm: ShmGroup::new(),
        })
    }
}

#[derive(Default)]
struct Faults {
    /// Non-zero: every sync fails with this code.
    sync: AtomicI32,
    /// Non-zero: every write fails with this code.
    write: AtomicI32,
    /// Every write fails with a plain I/O error (no code).
    write_io: AtomicBool,
}

#[derive(Default)]
struct MemBase {
    files: Mutex<HashMap<FileNameBuf, Arc<Data>>>,
    seen: Counter,
    faults: Faults,
}

struct MemFile {
    data: Arc<Data>,
    lock: FileLock,
    kind: FileKind,
    base: Arc<MemBase>,
}

/// The VFS handed to `register`: a handle on the shared backend.
#[derive(Clone, Default)]
struct Mem(Arc<MemBase>);

impl Vfs for Mem {
    type File = MemFile;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<MemFile> {
        self.0.seen.add(Op::Open, Some(opts.kind), 0, false);
        let data = match name.path() {
            None => Data::new(),
            Some(p) => self
                .0
                .files
                .lock()
                .unwrap()
                .entry(p.to_owned())
                .or_insert_with(Data::new)
                .clone(),
        };
        Ok(MemFile {
            lock: data.lock.connect(),
            data,
            kind: opts.kind,
            base: self.0.clone(),
        })
    }

    fn delete(&self, path: &FileName, _sync_dir: bool) -> Result<()> {
        let gone = self.0.files.lock().unwrap().remove(path).is_some();
        self.0.seen.add(Op::Delete, None, 0, !gone);
        if gone {
            Ok(())
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound).into())
        }
    }

    fn access(&self, path: &FileName, _check: AccessCheck) -> Result<bool> {
        self.0.seen.add(Op::Access, None, 0, false);
        Ok(self.0.files.lock().unwrap().contains_key(path))
    }
}

impl MemFile {
    fn seen(&self, op: Op, bytes: u64, failed: bool) {
        self.base.seen.add(op, Some(self.kind), bytes, failed);
    }
}

impl Drop for MemFile {
    fn drop(&mut self) {
        self.seen(Op::Close, 0, false);
    }
}

impl File for MemFile {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let data = self.data.bytes.lock().unwrap();
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        drop(data);
        self.seen(Op::Read, n as u64, false);
        Ok(n)
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let code = self.base.faults.write.load(Ordering::SeqCst);
        if code != 0 {
            self.seen(Op::Write, 0, true);
            return Err(Error::new(code, "test base: write refused"));
        }
        if self.base.faults.write_io.load(Ordering::SeqCst) {
            self.seen(Op::Write, 0, true);
            return Err(std::io::Error::other("test base: device gone").into());
        }
        let mut data = self.data.bytes.lock().unwrap();
        let end = offset as usize + buf.len();
        if data.len() < end {
            data.resize(end, 0);
        }
        data[offset as usize..end].copy_from_slice(buf);
        drop(data);
        self.seen(Op::Write, buf.len() as u64, false);
        Ok(())
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        self.data.bytes.lock().unwrap().truncate(size as usize);
        self.seen(Op::Truncate, 0, false);
        Ok(())
    }

    fn sync(&mut self, _flags: SyncFlags) -> Result<()> {
        let code = self.base.faults.sync.load(Ordering::SeqCst);
        self.seen(Op::Sync, 0, code != 0);
        if code != 0 {
            return Err(Error::new(code, "test base: sync failed"));
        }
        Ok(())
    }

    fn size(&mut self) -> Result<u64> {
        self.seen(Op::FileSize, 0, false);
        Ok(self.data.bytes.lock().unwrap().len() as u64)
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        let r = self.lock.lock(level);
        self.seen(Op::Lock, 0, r.is_err());
        r
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        let r = self.lock.unlock(level);
        self.seen(Op::Unlock, 0, r.is_err());
        r
    }

    fn check_reserved_lock(&mut self) -> Result<bool> {
        self.seen(Op::CheckReservedLock, 0, false);
        Ok(self.lock.check_reserved())
    }

    fn file_control(&mut self, ctl: &mut FileControl<'_>) -> Result<()> {
        // `PRAGMA wrap_probe` answers the file kind the base sees: proof that
        // the wrapper forwards file controls.
        match ctl.control() {
            Control::Pragma(mut p) if p.name().eq_ignore_ascii_case("wrap_probe") => {
                let answer = format!("probe:{}:{}", self.kind.name(), p.value().unwrap_or(""));
                p.set_result(&answer);
                Ok(())
            }
            _ => Err(Error::not_found()),
        }
    }

    fn shm(&self) -> ShmSupport {
        if self.kind == FileKind::MainDb {
            ShmSupport::Group(self.data.shm.clone())
        } else {
            ShmSupport::None
        }
    }
}

fn open(vfs: &str, db: &str) -> Connection {
    Connection::open_with_flags(
        format!("file:{db}?vfs={vfs}"),
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .unwrap()
}

fn extended_code(e: rusqlite::Error) -> i32 {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => f.extended_code,
        other => panic!("not an SQLite failure: {other:?}"),
    }
}

fn count(conn: &Connection) -> i64 {
    conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

// ---------------------------------------------------------------------------
// Tests

/// N inserts in one WAL transaction: the wrapper reports exactly the calls,
/// bytes and failures the backend itself received, op by op and kind by kind;
/// the stats recorder agrees on reads, writes, syncs and bytes.
#[test]
fn counts_match_what_the_base_saw() {
    const N: i64 = 300;
    let base = Mem::default();
    let tally = Arc::new(TallyRecorder::default());
    let stats = Arc::new(StatsRecorder::new());
    // The tally recorder asks (by default) for every call to be timed, so
    // the pair does too, and the stats get every latency.
    let both = Arc::new((tally.clone(), stats.clone()));
    let wrap = Wrap::new(base.clone(), both);
    assert_eq!(format!("{:?}", wrap.latency()), "Every");
    let reg = register("wrap-counts", wrap, false).unwrap();

    let conn = open("wrap-counts", "/counts.db");
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch("PRAGMA synchronous=FULL; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);")
        .unwrap();

    // The setup (new file, short reads of its empty header, journal, switch
    // to WAL) matches already.
    let setup = base.0.seen.take();
    assert_eq!(tally.0.take(), setup, "wrapper and base disagree in setup");
    assert!(stats.snapshot().op(Op::Read).short_reads > 0);

    // Measure the transaction alone.
    stats.reset();
    conn.execute_batch("BEGIN").unwrap();
    for i in 0..N {
        conn.execute(
            "INSERT INTO t(v) VALUES (?1)",
            [format!("row {i} {}", "x".repeat(50))],
        )
        .unwrap();
    }
    conn.execute_batch("COMMIT").unwrap();

    let from_base = base.0.seen.take();
    let from_wrap = tally.0.take();
    assert_eq!(from_wrap, from_base, "wrapper and base disagree");
    let wal_writes = from_base[&tally_key(Op::Write, Some(FileKind::Wal))];
    let wal_syncs = from_base[&tally_key(Op::Sync, Some(FileKind::Wal))];
    assert!(wal_writes.0 >= 2, "a commit writes frames: {wal_writes:?}");
    assert!(wal_syncs.0 >= 1, "synchronous=FULL syncs the WAL");

    let s = stats.snapshot();
    for op in [
        Op::Read,
        Op::Write,
        Op::Sync,
        Op::Lock,
        Op::Unlock,
        Op::FileSize,
    ] {
        let (calls, bytes, errors) = FileKind::ALL
            .iter()
            .map(|k| {
                from_base
                    .get(&tally_key(op, Some(*k)))
                    .copied()
                    .unwrap_or_default()
            })
            .fold((0, 0, 0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
        let row = s.op(op);
        assert_eq!(
            (row.count, row.bytes, row.errors),
            (calls, bytes, errors),
            "{op:?}"
        );
        assert_eq!(row.timed, row.count, "{op:?}: every call timed");
    }
    let wal = s.kind(Some(FileKind::Wal));
    assert_eq!((wal.writes, wal.write_bytes), (wal_writes.0, wal_writes.1));
    assert_eq!(wal.syncs, wal_syncs.0);
    assert_eq!(s.total_errors(), 0);

    // The whole life of the connection, closes and the WAL's deletion
    // included, still matches.
    drop(conn);
    assert_eq!(tally.0.take(), base.0.seen.take());
    let conn = open("wrap-counts", "/counts.db");
    assert_eq!(count(&conn), N);
    assert_eq!(integrity(&conn), "ok");
    drop(conn);
    reg.unregister().unwrap();
}

/// Codes returned by the base are recorded and reach SQLite unchanged:
/// SQLITE_IOERR_FSYNC from sync, SQLITE_FULL from write, and a plain I/O
/// error as the write's default SQLITE_IOERR_WRITE.
#[test]
fn base_errors_are_recorded_and_reach_sqlite_unchanged() {
    let base = Mem::default();
    let log = Arc::new(LogRecorder::default());
    let stats = Arc::new(StatsRecorder::new());
    let reg = register(
        "wrap-errors",
        Wrap::new(base.clone(), Arc::new((log.clone(), stats.clone()))),
        false,
    )
    .unwrap();
    let conn = open("wrap-errors", "/errors.db");
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE t(v); INSERT INTO t VALUES ('kept');",
    )
    .unwrap();

    // 1. Sync fails.
    base.0
        .faults
        .sync
        .store(SQLITE_IOERR_FSYNC, Ordering::SeqCst);
    let e = conn
        .execute("INSERT INTO t VALUES ('lost')", [])
        .unwrap_err();
    assert_eq!(extended_code(e), SQLITE_IOERR_FSYNC);
    base.0.faults.sync.store(0, Ordering::SeqCst);
    let failed: Vec<_> = log
        .events()
        .into_iter()
        .filter(|e| e.code != SQLITE_OK)
        .collect();
    assert!(
        failed.iter().any(|e| e.op == Op::Sync
            && e.code == SQLITE_IOERR_FSYNC
            && e.file == "/errors.db-wal"),
        "{failed:?}"
    );
    assert_eq!(
        stats.snapshot().op(Op::Sync).errors,
        base.0.seen.get(Op::Sync, Some(FileKind::Wal)).2
    );

    // 2. Write fails with SQLITE_FULL.
    base.0.faults.write.store(SQLITE_FULL, Ordering::SeqCst);
    let e = conn
        .execute("INSERT INTO t VALUES (zeroblob(100000))", [])
        .unwrap_err();
    assert_eq!(extended_code(e), SQLITE_FULL);
    base.0.faults.write.store(0, Ordering::SeqCst);
    assert!(
        log.events()
            .iter()
            .any(|e| e.op == Op::Write && e.code == SQLITE_FULL && e.bytes > 0)
    );

    // 3. A plain I/O error takes the write's default code, on both sides.
    base.0.faults.write_io.store(true, Ordering::SeqCst);
    let e = conn
        .execute("INSERT INTO t VALUES (zeroblob(100000))", [])
        .unwrap_err();
    assert_eq!(extended_code(e), SQLITE_IOERR_WRITE);
    base.0.faults.write_io.store(false, Ordering::SeqCst);
    assert!(
        log.events()
            .iter()
            .any(|e| e.op == Op::Write && e.code == SQLITE_IOERR_WRITE)
    );

    // Every failure the base returned was recorded, no more, no less.
    let recorded_write_errors = stats.snapshot().op(Op::Write).errors;
    let base_write_errors = base.0.seen.get(Op::Write, Some(FileKind::Wal)).2
        + base.0.seen.get(Op::Write, Some(FileKind::MainDb)).2;
    assert!(recorded_write_errors >= 2);
    assert_eq!(recorded_write_errors, base_write_errors);

    // The database is intact once the faults are gone.
    drop(conn);
    let conn = open("wrap-errors", "/errors.db");
    assert_eq!(integrity(&conn), "ok");
    let rows: Vec<String> = conn
        .prepare("SELECT v FROM t")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<std::result::Result<_, _>>()
        .unwrap();
    assert_eq!(rows[0], "kept");
    drop(conn);
    reg.unregister().unwrap();
}

/// Two connections in WAL mode through the wrapper: journal_mode answers
/// wal, each sees the other's commits, a reader keeps its snapshot while the
/// other commits, and a PRAGMA handled by the base's file_control answers
/// through the wrapper.
#[test]
fn wal_and_file_controls_work_through_the_wrapper() {
    let base = Mem::default();
    let stats = Arc::new(StatsRecorder::new());
    let reg = register("wrap-wal", Wrap::new(base, stats.clone()), false).unwrap();
    let a = open("wrap-wal", "/wal.db");
    let b = open("wrap-wal", "/wal.db");
    for c in [&a, &b] {
        let mode: String = c
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
    }
    a.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    assert_eq!(count(&b), 1);
    b.execute("INSERT INTO t VALUES (2)", []).unwrap();
    assert_eq!(count(&a), 2);

    // a holds a read snapshot; b commits; a sees the new row only after it
    // ends its transaction.
    a.execute_batch("BEGIN").unwrap();
    assert_eq!(count(&a), 2);
    b.execute("INSERT INTO t VALUES (3)", []).unwrap();
    assert_eq!(count(&a), 2);
    a.execute_batch("COMMIT").unwrap();
    assert_eq!(count(&a), 3);

    // A writer blocks the other writer with SQLITE_BUSY, through the wrapper.
    b.busy_timeout(std::time::Duration::ZERO).unwrap();
    a.execute_batch("BEGIN IMMEDIATE").unwrap();
    let e = b.execute("INSERT INTO t VALUES (4)", []).unwrap_err();
    assert_eq!(e.sqlite_error_code(), Some(ErrorCode::DatabaseBusy));
    a.execute_batch("COMMIT").unwrap();

    let probe: String = a
        .query_row("PRAGMA wrap_probe=7", [], |r| r.get(0))
        .unwrap();
    assert_eq!(probe, "probe:main-db:7");
    assert_eq!(integrity(&b), "ok");
    let s = stats.snapshot();
    assert!(s.kind(Some(FileKind::Wal)).writes > 0);
    // WAL writers exclude each other through the shared-memory lock table,
    // which vfs-core runs itself: no file lock was refused.
    assert_eq!(s.op(Op::Lock).busy, 0, "{s}");
    drop((a, b));
    reg.unregister().unwrap();
}

/// Over the native base (shared memory forwarded, real files): WAL with two
/// connections works and the shared-memory maps are recorded.
#[test]
fn wal_over_native_through_the_wrapper() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("native.db");
    let db = path.to_str().unwrap();
    let stats = Arc::new(StatsRecorder::new());
    let reg = register(
        "wrap-native",
        Wrap::new(Native::new().unwrap(), stats.clone()),
        false,
    )
    .unwrap();
    let a = open("wrap-native", db);
    let b = open("wrap-native", db);
    let mode: String = a
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    a.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    assert_eq!(count(&b), 2);
    b.execute("INSERT INTO t VALUES (3)", []).unwrap();
    assert_eq!(count(&a), 3);
    assert_eq!(integrity(&a), "ok");
    drop((a, b));

    let s = stats.snapshot();
    assert!(s.op(Op::ShmMap).count > 0, "{s}");
    assert!(s.kind(Some(FileKind::Wal)).writes > 0);
    assert_eq!(s.op(Op::Open).count, s.op(Op::Close).count);
    assert_eq!(s.total_errors(), 0, "{s}");
    // The file really is a WAL database on disk.
    let raw = std::fs::read(&path).unwrap();
    assert_eq!(&raw[18..20], &[2, 2]);
    reg.unregister().unwrap();
}

/// With no recorder the base itself is registered and works; with one, the
/// wrapper reports to it.
#[test]
fn register_observed_with_and_without_recorder() {
    let plain = Mem::default();
    let reg = register_observed("wrap-observed-none", plain.clone(), None, false).unwrap();
    let conn = open("wrap-observed-none", "/plain.db");
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    assert_eq!(count(&conn), 1);
    drop(conn);
    assert!(plain.0.seen.get(Op::Write, Some(FileKind::MainDb)).0 > 0);
    reg.unregister().unwrap();

    let observed = Mem::default();
    let log = Arc::new(LogRecorder::default());
    let reg = register_observed(
        "wrap-observed-some",
        observed.clone(),
        Some(log.clone()),
        false,
    )
    .unwrap();
    let conn = open("wrap-observed-some", "/observed.db");
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(conn);
    let events = log.events();
    let writes = events
        .iter()
        .filter(|e| e.op == Op::Write && e.kind == Some(FileKind::MainDb))
        .count() as u64;
    assert_eq!(
        writes,
        observed.0.seen.get(Op::Write, Some(FileKind::MainDb)).0
    );
    let first_db_write = events
        .iter()
        .find(|e| e.op == Op::Write && e.kind == Some(FileKind::MainDb))
        .unwrap();
    assert_eq!(first_db_write.file, "/observed.db");
    assert_eq!(first_db_write.offset % 4096, 0);
    reg.unregister().unwrap();
}

/// Sampled latency (the stats recorder's default) through rusqlite: counts,
/// bytes and errors of every operation still match what the base saw
/// exactly; opens, closes, syncs, truncates and deletes are all timed; the
/// frequent calls are timed in part, and the table says so.
#[test]
fn sampled_latency_keeps_counts_exact_and_times_every_rare_call() {
    let base = Mem::default();
    let stats = Arc::new(StatsRecorder::new());
    let wrap = Wrap::new(base.clone(), stats.clone());
    assert_eq!(wrap.latency(), stats.latency());
    assert_eq!(
        format!("{:?}", wrap.latency()),
        format!("Sampled({})", StatsRecorder::DEFAULT_SAMPLING)
    );
    let reg = register("wrap-sampled", wrap, false).unwrap();
    let conn = open("wrap-sampled", "/sampled.db");
    // Rollback journals: each commit opens, syncs and deletes (then, in
    // TRUNCATE mode, truncates) a journal.
    conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);")
        .unwrap();
    for i in 0..20 {
        conn.execute("INSERT INTO t(v) VALUES (?1)", [format!("row {i}")])
            .unwrap();
    }
    conn.execute_batch("PRAGMA journal_mode=TRUNCATE").unwrap();
    for i in 0..20 {
        conn.execute("INSERT INTO t(v) VALUES (?1)", [format!("more {i}")])
            .unwrap();
    }
    // Many autocommit reads: each locks, checks for a hot journal, asks the
    // size, reads the header and unlocks.
    let mut q = conn.prepare("SELECT v FROM t WHERE id = ?1").unwrap();
    for i in 0..3000i64 {
        let _: String = q.query_row([i % 40 + 1], |r| r.get(0)).unwrap();
    }
    drop(q);
    drop(conn);

    let seen = base.0.seen.take();
    let s = stats.snapshot();
    let mut sampled_calls = 0;
    for op in [
        Op::Open,
        Op::Close,
        Op::Read,
        Op::Write,
        Op::Sync,
        Op::Truncate,
        Op::FileSize,
        Op::Lock,
        Op::Unlock,
        Op::Delete,
        Op::Access,
    ] {
        let (calls, bytes, errors) = seen
            .iter()
            .filter(|((name, _), _)| name == op.name())
            .fold((0, 0, 0), |a, (_, b)| (a.0 + b.0, a.1 + b.1, a.2 + b.2));
        let row = s.op(op);
        assert!(calls > 0, "{op:?} never happened");
        assert_eq!(
            (row.count, row.bytes, row.errors),
            (calls, bytes, errors),
            "{op:?}"
        );
        match op {
            Op::Open | Op::Close | Op::Sync | Op::Truncate | Op::Delete => {
                assert_eq!(row.timed, row.count, "{op:?} is always timed");
                assert!(row.latency.max > std::time::Duration::ZERO, "{op:?}");
            }
            _ => {
                assert!(row.timed <= row.count, "{op:?}");
                sampled_calls += row.count;
            }
        }
    }
    // The frequent calls number in the thousands: some, not all, are timed,
    // and their histograms and (estimated) totals are filled.
    assert!(sampled_calls > 10_000, "{sampled_calls}");
    for op in [Op::Lock, Op::Unlock, Op::Access, Op::FileSize, Op::Read] {
        let row = s.op(op);
        assert!(row.count >= 3000, "{op:?}: {}", row.count);
        assert!(
            row.timed > 0 && row.timed < row.count / 4,
            "{op:?}: {} of {} timed",
            row.timed,
            row.count
        );
        assert!(row.latency.p50 <= row.latency.max);
        assert!(row.latency.total > std::time::Duration::ZERO, "{op:?}");
    }
    let db = s.kind(Some(FileKind::MainDb));
    let (reads, read_bytes, _) = base_sum(&seen, Op::Read, Some(FileKind::MainDb));
    assert_eq!((db.reads, db.read_bytes), (reads, read_bytes));
    let table = s.to_string();
    assert!(
        table.contains("timed") && table.contains("latency sampled"),
        "{table}"
    );
    reg.unregister().unwrap();
}

fn base_sum(t: &Tally, op: Op, kind: Option<FileKind>) -> (u64, u64, u64) {
    t.get(&tally_key(op, kind)).copied().unwrap_or_default()
}

/// Called directly (no SQLite): 20 000 reads and writes on one file are
/// counted with their exact bytes, about one in `DEFAULT_SAMPLING` is
/// timed, and every sync is.
#[test]
fn sampled_latency_direct_calls() {
    let base = Mem::default();
    let stats = Arc::new(StatsRecorder::new());
    let wrap = Wrap::new(base.clone(), stats.clone());
    let opts = OpenOptions {
        kind: FileKind::MainDb,
        access: OpenAccess::Create,
        exclusive: false,
        delete_on_close: false,
        flags: 0,
        page_reserve_above: 0,
    };
    let mut f = wrap
        .open(&OpenName::new("/direct.db", FileKind::MainDb), opts)
        .unwrap();
    const N: u64 = 10_000;
    let page = [7u8; 512];
    let mut buf = [0u8; 512];
    for i in 0..N {
        f.write_at(&page, (i % 64) * 512).unwrap();
        assert_eq!(f.read_at(&mut buf, (i % 64) * 512).unwrap(), 512);
    }
    for _ in 0..10 {
        f.sync(SyncFlags(2)).unwrap();
    }
    drop(f);
    let s = stats.snapshot();
    let (r, w, sync) = (s.op(Op::Read), s.op(Op::Write), s.op(Op::Sync));
    assert_eq!((r.count, r.bytes), (N, N * 512));
    assert_eq!((w.count, w.bytes), (N, N * 512));
    assert_eq!((sync.count, sync.timed), (10, 10));
    assert_eq!((s.op(Op::Open).timed, s.op(Op::Close).timed), (1, 1));
    // Reads and writes share the file's countdown: together about
    // 2N / DEFAULT_SAMPLING are timed (the gaps are random, mean n).
    let expected = 2 * N / u64::from(StatsRecorder::DEFAULT_SAMPLING);
    let timed = r.timed + w.timed;
    assert!(
        timed > expected * 8 / 10 && timed < expected * 12 / 10,
        "{timed} timed, about {expected} expected"
    );
    // Both kinds of call get their share, though they strictly alternate.
    assert!(
        r.timed > expected / 4 && w.timed > expected / 4,
        "{r:?} {w:?}"
    );
    assert_eq!(
        base.0.seen.get(Op::Read, Some(FileKind::MainDb)).0,
        N,
        "the base saw every read"
    );
}

/// A recorder that keeps the default latency mode gets every call timed,
/// and so does a stats recorder paired with it.
#[test]
fn recorders_asking_every_call_get_every_call_timed() {
    let base = Mem::default();
    let log = Arc::new(LogRecorder::default());
    let stats = Arc::new(StatsRecorder::new());
    let reg = register(
        "wrap-every",
        Wrap::new(base, Arc::new((stats.clone(), log.clone()))),
        false,
    )
    .unwrap();
    let conn = open("wrap-every", "/every.db");
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    for _ in 0..100 {
        assert_eq!(count(&conn), 1);
    }
    drop(conn);
    let events = log.events();
    assert!(events.len() > 500, "{}", events.len());
    assert!(events.iter().all(|e| e.timed), "an untimed event");
    let s = stats.snapshot();
    assert_eq!(s.total_ops(), events.len() as u64);
    for row in &s.ops {
        assert_eq!(row.timed, row.count, "{:?}", row.op);
    }
    assert!(!s.to_string().contains("latency sampled"));
    reg.unregister().unwrap();
}

// ---------------------------------------------------------------------------
// Tracing

#[cfg(feature = "tracing")]
mod tracing_recorder {
    use super::*;
    use vfs_observe::TracingRecorder;

    #[derive(Clone, Debug)]
    struct Captured {
        level: tracing::Level,
        target: String,
        fields: HashMap<String, String>,
    }

    #[derive(Clone, Default)]
    struct Capture(Arc<Mutex<Vec<Captured>>>);

    struct Fields<'a>(&'a mut HashMap<String, String>);

    impl tracing::field::Visit for Fields<'_> {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
    }

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Capture {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            let mut fields = HashMap::new();
            event.record(&mut Fields(&mut fields));
            self.0.lock().unwrap().push(Captured {
                level: *event.metadata().level(),
                target: event.metadata().target().to_owned(),
                fields,
            });
        }
    }

    /// The tracing recorder emits one event per operation with structured
    /// fields: successes at TRACE (DEBUG for open/sync), failures at WARN.
    #[test]
    fn tracing_recorder_emits_structured_events() {
        use tracing_subscriber::layer::SubscriberExt;

        let base = Mem::default();
        let reg = register(
            "wrap-tracing",
            Wrap::new(base.clone(), Arc::new(TracingRecorder)),
            false,
        )
        .unwrap();
        let capture = Capture::default();
        let subscriber = tracing_subscriber::registry().with(capture.clone());
        tracing::subscriber::with_default(subscriber, || {
            let conn = open("wrap-tracing", "/traced.db");
            conn.execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
                 CREATE TABLE t(x); INSERT INTO t VALUES (1);",
            )
            .unwrap();
            base.0
                .faults
                .sync
                .store(SQLITE_IOERR_FSYNC, Ordering::SeqCst);
            let e = conn.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
            assert_eq!(extended_code(e), SQLITE_IOERR_FSYNC);
            base.0.faults.sync.store(0, Ordering::SeqCst);
            drop(conn);
        });
        let events = capture.0.lock().unwrap().clone();
        assert!(
            events
                .iter()
                .all(|e| e.target == vfs_observe::TRACING_TARGET)
        );
        let with = |op: &'static str, kind: &'static str| {
            events
                .iter()
                .filter(move |e| e.fields["op"] == op && e.fields["kind"] == kind)
        };
        for e in &events {
            for f in ["op", "kind", "file", "offset", "bytes", "micros", "code"] {
                assert!(e.fields.contains_key(f), "{f} missing in {e:?}");
            }
        }
        let write = with("write", "wal").next().expect("a WAL write event");
        assert_eq!(write.level, tracing::Level::TRACE);
        assert_eq!(write.fields["file"], "/traced.db-wal");
        assert_eq!(write.fields["code"], "0");
        assert!(write.fields["bytes"].parse::<u64>().unwrap() > 0);
        let open_event = with("open", "main-db").next().expect("an open event");
        assert_eq!(open_event.level, tracing::Level::DEBUG);
        assert_eq!(open_event.fields["file"], "/traced.db");
        let lock = with("lock", "main-db").next().expect("a lock event");
        assert!(lock.fields.contains_key("level"), "{lock:?}");
        let failed = with("sync", "wal")
            .find(|e| e.level == tracing::Level::WARN)
            .expect("a WARN event for the failed sync");
        assert_eq!(failed.fields["code"], SQLITE_IOERR_FSYNC.to_string());
        assert_eq!(failed.fields["error"], "SQLITE_IOERR_FSYNC");
        assert!(
            with("sync", "wal")
                .any(|e| e.level == tracing::Level::DEBUG && e.fields["code"] == "0")
        );
        reg.unregister().unwrap();
    }
}

/// Memory-mapped reads pass through the wrapper, which reports each page
/// its base lent (`Op::Fetch`, 4096 bytes each): over the native base the
/// table offers `xFetch` and the rows come back the same as without it.
#[test]
fn mapped_reads_through_the_wrapper_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mapped.db");
    let db = path.to_str().unwrap();
    let stats = Arc::new(StatsRecorder::new());
    let reg = register(
        "wrap-native-mmap",
        Wrap::new(Native::new().unwrap(), stats.clone()),
        false,
    )
    .unwrap();
    let a = open("wrap-native-mmap", db);
    a.execute_batch(
        "CREATE TABLE t(x, pad);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<2000)
         INSERT INTO t SELECT i, zeroblob(500) FROM n;",
    )
    .unwrap();
    let sum = |c: &Connection| -> i64 {
        c.query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
            .unwrap()
    };
    let plain = sum(&a);
    assert_eq!(stats.snapshot().op(Op::Fetch).count, 0, "mmap_size 0");
    let b = open("wrap-native-mmap", db);
    let size: i64 = b
        .query_row("PRAGMA mmap_size = 16777216", [], |r| r.get(0))
        .unwrap();
    assert_eq!(size, 16_777_216);
    assert_eq!(sum(&b), plain);
    assert_eq!(integrity(&b), "ok");
    drop((a, b));
    let s = stats.snapshot();
    let fetch = s.op(Op::Fetch);
    assert!(fetch.count > 100, "{s}");
    // Pages lent are whole; unix lends none of the last page (it keeps 256
    // bytes of mapping after each page it lends).
    assert_eq!(fetch.bytes % 4096, 0, "{s}");
    assert!(
        fetch.bytes >= (fetch.count - fetch.count / 10) * 4096,
        "{s}"
    );
    assert_eq!(s.total_errors(), 0, "{s}");
    reg.unregister().unwrap();
}
