//! The page layer under a trivial codec, through rusqlite over the native
//! base: every file kind round-trips, the bytes on disk are transformed, and
//! SQLite's journals and WAL keep working (rollback, savepoints, recovery).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rusqlite::Connection;

use vfs_core::{
    DeviceCharacteristics, File, FileKind, Native, OpenName, OpenOptions, Registration, Result,
    Vfs, codes, register,
};

use super::*;
use crate::sqlite_format::db_header;

const MARKER: &[u8; 8] = b"XORPAGE!";
const SLICE: usize = 8;

/// XORs page images with a key that depends on the page number, keeps
/// page-1 bytes 16..24 in clear, and stamps `MARKER` in its 8-byte reserved
/// slice (returning zeros there on decode, as the contract asks). Temp
/// journals (and sorter files) are XORed as a stream.
#[derive(Default)]
struct Xor {
    encoded: [AtomicU64; 8],
    decoded: [AtomicU64; 8],
    stream: AtomicU64,
    frame_sums: AtomicU64,
    record_sums: AtomicU64,
}

fn slot(kind: FileKind) -> usize {
    FileKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
}

fn key(pgno: u32) -> u8 {
    0x5a ^ (pgno as u8)
}

fn has_slice(ctx: &PageCtx<'_>) -> bool {
    ctx.reserve == Some(SLICE)
}

fn xor_body(ctx: &PageCtx<'_>, image: &mut [u8]) {
    let end = if has_slice(ctx) {
        image.len() - SLICE
    } else {
        image.len()
    };
    let k = key(ctx.pgno);
    for (i, b) in image[..end].iter_mut().enumerate() {
        if !(ctx.pgno == 1 && (16..24).contains(&i)) {
            *b ^= k;
        }
    }
}

impl Xor {
    fn encoded(&self, kind: FileKind) -> u64 {
        self.encoded[slot(kind)].load(Ordering::Relaxed)
    }
    fn decoded(&self, kind: FileKind) -> u64 {
        self.decoded[slot(kind)].load(Ordering::Relaxed)
    }
}

impl PageCodec for Xor {
    type State = ();

    fn mapping(&self, kind: FileKind) -> Mapping {
        match kind {
            FileKind::TempJournal => Mapping::Stream,
            FileKind::SuperJournal => Mapping::None,
            _ => Mapping::Pages,
        }
    }

    fn reserve(&self) -> usize {
        SLICE
    }

    fn open(&self, _: &FileInfo<'_>, _: &OpenName<'_>, _: OpenOptions) -> Result<()> {
        Ok(())
    }

    fn encode(&self, _: &mut (), ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        self.encoded[slot(ctx.kind)].fetch_add(1, Ordering::Relaxed);
        assert_eq!(image.len(), ctx.page_size);
        xor_body(ctx, image);
        if has_slice(ctx) {
            let n = image.len();
            image[n - SLICE..].copy_from_slice(MARKER);
        }
        Ok(())
    }

    fn decode(&self, _: &mut (), ctx: &PageCtx<'_>, image: &mut [u8]) -> Result<()> {
        self.decoded[slot(ctx.kind)].fetch_add(1, Ordering::Relaxed);
        if has_slice(ctx) {
            let n = image.len();
            if &image[n - SLICE..] != MARKER {
                return Err(ctx.error(codes::SQLITE_IOERR_DATA, "marker missing"));
            }
            image[n - SLICE..].fill(0);
        }
        xor_body(ctx, image);
        Ok(())
    }

    fn wal_frame_checksum(
        &self,
        _: &mut (),
        _: &PageCtx<'_>,
        sum: &mut [u8; 8],
        _: Direction,
    ) -> Result<()> {
        self.frame_sums.fetch_add(1, Ordering::Relaxed);
        sum.iter_mut().for_each(|b| *b ^= 0x3c);
        Ok(())
    }

    fn journal_checksum(
        &self,
        _: &mut (),
        _: &PageCtx<'_>,
        sum: &mut [u8; 4],
        _: Direction,
    ) -> Result<()> {
        self.record_sums.fetch_add(1, Ordering::Relaxed);
        sum.iter_mut().for_each(|b| *b ^= 0xc3);
        Ok(())
    }

    fn encode_stream(&self, _: &mut (), ctx: &StreamCtx<'_>, data: &mut [u8]) -> Result<()> {
        self.stream.fetch_add(1, Ordering::Relaxed);
        stream_xor(ctx.offset, data);
        Ok(())
    }

    fn decode_stream(&self, _: &mut (), ctx: &StreamCtx<'_>, data: &mut [u8]) -> Result<()> {
        stream_xor(ctx.offset, data);
        Ok(())
    }
}

fn stream_xor(offset: u64, data: &mut [u8]) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= 0xa5 ^ ((offset + i as u64) as u8).wrapping_mul(31);
    }
}

struct Env {
    codec: Arc<Xor>,
    reg: Option<Registration>,
    name: String,
    dir: tempfile::TempDir,
}

impl Env {
    fn new(test: &str) -> Env {
        Env::with_base(test, Native::new().unwrap())
    }

    fn with_base<B: Vfs>(test: &str, base: B) -> Env {
        let codec = Arc::new(Xor::default());
        let name = format!("page-xor-{test}");
        let reg = register(
            &name,
            PageVfs::with_shared_codec(base, codec.clone()),
            false,
        )
        .unwrap();
        Env {
            codec,
            reg: Some(reg),
            name,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    fn open(&self, file: &str) -> Connection {
        self.open_path(&self.path(file), "")
    }

    fn open_path(&self, path: &Path, extra: &str) -> Connection {
        let conn =
            Connection::open(format!("file:{}?vfs={}{extra}", path.display(), self.name)).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(reg) = self.reg.take() {
            let _ = reg.unregister();
        }
    }
}

fn integrity(conn: &Connection) -> String {
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Every page of the file on disk carries the marker, the header keeps its
/// page size and reserve in clear, and no page reads as plain SQLite.
fn assert_transformed_on_disk(path: &Path) {
    let raw = std::fs::read(path).unwrap();
    assert!(raw.len() >= 512, "database file too small");
    assert!(
        !raw.starts_with(b"SQLite format 3"),
        "page 1 stored in clear"
    );
    let (p, r) = db_header(&raw).expect("page size and reserve in clear");
    assert_eq!(r, SLICE, "reserve requested by the connection hook");
    assert_eq!(raw.len() % p, 0);
    for (i, page) in raw.chunks(p).enumerate() {
        assert_eq!(&page[p - SLICE..], MARKER, "page {} has no marker", i + 1);
    }
}

fn fill(conn: &Connection, rows: i64) {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, v TEXT, b BLOB);
         CREATE INDEX IF NOT EXISTS t_v ON t(v);",
    )
    .unwrap();
    let tx = conn.unchecked_transaction().unwrap();
    {
        let mut st = tx
            .prepare("INSERT INTO t(v, b) VALUES (printf('row-%08d', ?1), randomblob(?2))")
            .unwrap();
        for i in 0..rows {
            st.execute(rusqlite::params![i, 100 + (i * 37) % 900])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

fn exercise_mode(mode: &str) {
    let env = Env::new(&format!("modes-{}", mode.to_lowercase()));
    let a = env.open("m.db");
    let got: String = a
        .query_row(&format!("PRAGMA journal_mode={mode}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(got.to_uppercase(), mode);
    fill(&a, 600);
    let b = env.open("m.db");
    let c = env.open("m.db");
    assert_eq!(count(&b, "SELECT count(*) FROM t"), 600);

    // A rolled-back transaction (journal played back in rollback modes).
    c.execute_batch("BEGIN; UPDATE t SET v = v || '-changed'; DELETE FROM t WHERE id % 3 = 0;")
        .unwrap();
    c.execute_batch("ROLLBACK").unwrap();
    assert_eq!(
        count(&b, "SELECT count(*) FROM t WHERE v LIKE '%-changed'"),
        0
    );

    // A statement journal big enough to spill to a sub-journal file, then
    // rolled back to the savepoint.
    b.execute_batch(
        "BEGIN;
         UPDATE t SET b = zeroblob(length(b)) WHERE id % 2 = 0;
         SAVEPOINT s;
         UPDATE t SET v = v || '-sp', b = randomblob(length(b));
         ROLLBACK TO s;
         RELEASE s;
         COMMIT;",
    )
    .unwrap();
    assert_eq!(count(&a, "SELECT count(*) FROM t WHERE v LIKE '%-sp'"), 0);
    assert_eq!(
        count(
            &a,
            "SELECT count(*) FROM t WHERE id % 2 = 0 AND b = zeroblob(length(b))"
        ),
        300
    );

    // Temp tables with a rolled-back transaction (temp journal), and a sort
    // bigger than the cache (sorter files, same file kind).
    c.execute_batch(
        "PRAGMA cache_size = 20; PRAGMA temp.cache_size = 10;
         CREATE TEMP TABLE tt AS SELECT * FROM t;
         BEGIN; UPDATE tt SET v = v || '-temp'; ROLLBACK;",
    )
    .unwrap();
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM (SELECT b FROM t UNION SELECT b || 'x' FROM tt)"
        ),
        1200
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM tt WHERE v LIKE '%-temp'"),
        0
    );
    let sorted: i64 = count(
        &c,
        "SELECT count(*) FROM (SELECT v, b FROM t ORDER BY b, v DESC)",
    );
    assert_eq!(sorted, 600);

    // VACUUM rebuilds the database in a temporary database (spilling with
    // this small cache), then copies it back.
    c.execute_batch("VACUUM").unwrap();

    // A second writer, then everyone agrees.
    fill(&c, 50);
    for conn in [&a, &b, &c] {
        assert_eq!(count(conn, "SELECT count(*) FROM t"), 650);
        assert_eq!(integrity(conn), "ok");
    }
    drop((a, b, c));

    let fresh = env.open("m.db");
    assert_eq!(count(&fresh, "SELECT count(*) FROM t"), 650);
    assert_eq!(integrity(&fresh), "ok");
    if mode == "WAL" {
        fresh
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    drop(fresh);
    assert_transformed_on_disk(&env.path("m.db"));

    let x = &env.codec;
    assert!(x.encoded(FileKind::MainDb) > 0 && x.decoded(FileKind::MainDb) > 0);
    assert!(
        x.encoded(FileKind::SubJournal) > 0,
        "sub-journal pages seen"
    );
    assert!(
        x.decoded(FileKind::SubJournal) > 0,
        "sub-journal played back"
    );
    assert!(
        x.stream.load(Ordering::Relaxed) > 0,
        "temp journal / sorter"
    );
    if mode == "WAL" {
        assert!(x.encoded(FileKind::Wal) > 0 && x.decoded(FileKind::Wal) > 0);
        assert!(x.frame_sums.load(Ordering::Relaxed) > 0);
    } else {
        assert!(x.encoded(FileKind::MainJournal) > 0);
        assert!(x.decoded(FileKind::MainJournal) > 0, "journal played back");
        assert!(x.record_sums.load(Ordering::Relaxed) > 0);
    }
}

#[test]
fn delete_mode_round_trips_every_file_kind() {
    exercise_mode("DELETE");
}

#[test]
fn truncate_mode_round_trips_every_file_kind() {
    exercise_mode("TRUNCATE");
}

#[test]
fn persist_mode_round_trips_every_file_kind() {
    exercise_mode("PERSIST");
}

#[test]
fn wal_mode_round_trips_every_file_kind() {
    exercise_mode("WAL");
}

/// Copies `db` and its `-wal` (as a crash would leave them) to `dst`.
fn crash_copy(db: &Path, dst: &Path) {
    std::fs::copy(db, dst).unwrap();
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    std::fs::copy(&wal, format!("{}-wal", dst.display())).unwrap();
}

fn wal_recovery(test: &str, extra: &str) {
    let env = Env::new(test);
    let path = env.path("w.db");
    let conn = env.open_path(&path, extra);
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0; PRAGMA synchronous=FULL;",
    )
    .unwrap();
    fill(&conn, 300);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    fill(&conn, 200);
    conn.execute("UPDATE t SET v = 'last' WHERE id = 7", [])
        .unwrap();
    let wal_len = std::fs::metadata(format!("{}-wal", path.display()))
        .unwrap()
        .len();
    assert!(wal_len > 0, "commits are in the WAL only");

    let copy = env.path("copy.db");
    crash_copy(&path, &copy);
    drop(conn);

    let again = env.open_path(&copy, extra);
    assert_eq!(count(&again, "SELECT count(*) FROM t"), 500);
    let v: String = again
        .query_row("SELECT v FROM t WHERE id = 7", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, "last");
    assert_eq!(integrity(&again), "ok");
}

#[test]
fn wal_recovery_after_crash_keeps_every_commit() {
    wal_recovery("wal-crash", "");
}

/// Without POWERSAFE_OVERWRITE, SQLite pads commits to sector boundaries
/// and splits frame writes at its sync point: the layer must hold the first
/// part of a split page and still produce a WAL that recovers.
#[test]
fn wal_recovery_with_frames_split_at_sync_points() {
    wal_recovery("wal-split", "&psow=0");
}

#[test]
fn tampered_page_fails_with_ioerr_data_naming_the_page() {
    let env = Env::new("tamper");
    let path = env.path("t.db");
    let conn = env.open_path(&path, "");
    fill(&conn, 200);
    drop(conn);
    let mut raw = std::fs::read(&path).unwrap();
    let (p, _) = db_header(&raw).unwrap();
    raw[2 * p - 1] ^= 0xff; // the marker of page 2, the root of table t
    std::fs::write(&path, &raw).unwrap();

    let conn = env.open_path(&path, "");
    let err = conn
        .query_row("SELECT sum(length(b)) FROM t", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    match err {
        rusqlite::Error::SqliteFailure(e, _) => {
            assert_eq!(e.extended_code, codes::SQLITE_IOERR_DATA)
        }
        other => panic!("unexpected {other:?}"),
    }
    let detail = vfs_core::last_error().expect("the layer's message");
    assert!(
        detail.message.contains("page 2 at offset"),
        "{}",
        detail.message
    );
    assert!(detail.message.contains("t.db"), "{}", detail.message);
}

#[test]
fn new_database_gets_the_reserve_and_answers_the_pragma() {
    let env = Env::new("reserve");
    let conn = env.open("r.db");
    let answer: String = conn
        .query_row(&format!("PRAGMA {RESERVE_PRAGMA}"), [], |r| r.get(0))
        .unwrap();
    assert_eq!(answer, "8");
    conn.execute_batch("PRAGMA page_size=1024; CREATE TABLE x(a); INSERT INTO x VALUES (1);")
        .unwrap();
    drop(conn);
    let raw = std::fs::read(env.path("r.db")).unwrap();
    assert_eq!(db_header(&raw), Some((1024, SLICE)));
    assert_transformed_on_disk(&env.path("r.db"));
}

#[test]
fn page_size_is_fixed_once_the_database_exists() {
    let env = Env::new("vacuum-page-size");
    let conn = env.open("v.db");
    fill(&conn, 300);
    conn.execute_batch("PRAGMA page_size=8192; VACUUM;")
        .unwrap();
    assert_eq!(
        count(&conn, "PRAGMA page_size"),
        4096,
        "page_size change swallowed"
    );
    assert_eq!(integrity(&conn), "ok");

    // A backup from a database of another page size would write the new
    // pages in pieces of the old size: refused, database intact.
    let src = Connection::open_in_memory().unwrap();
    src.execute_batch(
        "PRAGMA page_size=1024; CREATE TABLE other(x); INSERT INTO other VALUES (1);",
    )
    .unwrap();
    let mut dst = env.open("v.db");
    let err = {
        let backup = rusqlite::backup::Backup::new(&src, &mut dst).unwrap();
        backup.step(-1).unwrap_err()
    };
    match err {
        rusqlite::Error::SqliteFailure(e, _) => {
            assert_eq!(e.code, rusqlite::ErrorCode::SystemIoFailure)
        }
        other => panic!("unexpected {other:?}"),
    }
    drop((conn, dst));
    let conn = env.open("v.db");
    assert_eq!(count(&conn, "SELECT count(*) FROM t"), 300);
    assert_eq!(integrity(&conn), "ok");
    drop(conn);
    assert_transformed_on_disk(&env.path("v.db"));
}

/// The native file of a transformed database no longer offers sub-page
/// reads; power-safe overwrite is kept. (Atomic-write capabilities, which
/// the native base does not claim, are cleared too: vfs-crypto's
/// `capabilities` test uses a base that claims them.)
#[test]
fn device_characteristics_drop_subpage_read_only() {
    let env = Env::new("caps");
    let vfs = PageVfs::new(Native::new().unwrap(), Xor::default());
    let path = env.path("caps.db");
    let p = path.to_str().unwrap();
    let name = OpenName::new(p, FileKind::MainDb);
    let opts = OpenOptions::new(FileKind::MainDb, vfs_core::OpenAccess::Create);
    let file = vfs.open(&name, opts).unwrap();
    let base = Native::new().unwrap().open(&name, opts).unwrap();
    let caps = file.device_characteristics();
    assert!(!caps.has(DeviceCharacteristics::SUBPAGE_READ));
    assert_eq!(
        caps.has(DeviceCharacteristics::POWERSAFE_OVERWRITE),
        base.device_characteristics()
            .has(DeviceCharacteristics::POWERSAFE_OVERWRITE)
    );
    assert!(
        base.device_characteristics()
            .has(DeviceCharacteristics::SUBPAGE_READ),
        "the native base offers sub-page reads, so the test means something"
    );
}

/// A crash in the middle of a rollback-mode transaction whose pages already
/// spilled to the database file: a fresh connection finds the hot journal,
/// decodes its records (page images and checksums) and restores the
/// database.
#[test]
fn hot_journal_rollback_after_a_crash() {
    let env = Env::new("hot-journal");
    let path = env.path("h.db");
    let conn = env.open_path(&path, "");
    fill(&conn, 400);
    let before = count(&conn, "SELECT sum(length(b)) + count(*) FROM t");
    conn.execute_batch(
        "PRAGMA cache_size = 10;
         BEGIN;
         UPDATE t SET v = v || '-lost', b = randomblob(length(b) + 50);",
    )
    .unwrap();
    let journal = format!("{}-journal", path.display());
    assert!(std::fs::metadata(&journal).unwrap().len() > 0);
    let copy = env.path("hcopy.db");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::copy(&journal, format!("{}-journal", copy.display())).unwrap();
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    assert_ne!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(&path).unwrap(),
        "the copy holds pages the transaction spilled"
    );

    let decoded_before = env.codec.decoded(FileKind::MainJournal);
    let again = env.open_path(&copy, "");
    assert_eq!(
        count(&again, "SELECT count(*) FROM t WHERE v LIKE '%-lost'"),
        0
    );
    assert_eq!(
        count(&again, "SELECT sum(length(b)) + count(*) FROM t"),
        before
    );
    assert_eq!(integrity(&again), "ok");
    assert!(env.codec.decoded(FileKind::MainJournal) > decoded_before);
    drop(again);
    assert!(!Path::new(&format!("{}-journal", copy.display())).exists());
    assert_transformed_on_disk(&copy);
}

/// The main database file of `path` opened through a fresh `PageVfs` with
/// the test codec, outside SQLite.
fn open_main(path: &Path) -> PageFile<<Native as Vfs>::File, Xor> {
    let vfs = PageVfs::new(Native::new().unwrap(), Xor::default());
    let name = OpenName::new(path, FileKind::MainDb);
    let opts = OpenOptions::new(FileKind::MainDb, vfs_core::OpenAccess::Create);
    vfs.open(&name, opts).unwrap()
}

/// Reads and writes that span several pages or start and end inside pages
/// (as a shim above the layer may make) are served page by page once the
/// page size is known: the bytes read equal SQLite's one-page reads, and
/// bytes written land encoded in every page they touch.
#[test]
fn spans_of_pages_and_unaligned_io_are_mapped_page_by_page() {
    let env = Env::new("spans");
    let path = env.path("s.db");
    let conn = env.open_path(&path, "");
    conn.execute_batch("PRAGMA page_size = 1024").unwrap();
    fill(&conn, 300);
    drop(conn);
    let stored = std::fs::read(&path).unwrap();
    let size = stored.len();
    assert!(size > 2 * 65536, "the file spans several 64 KiB chunks");

    let mut file = open_main(&path);
    let mut pages = vec![0u8; size];
    for (i, page) in pages.chunks_mut(1024).enumerate() {
        assert_eq!(file.read_at(page, (i * 1024) as u64).unwrap(), 1024);
    }
    assert!(pages.starts_with(b"SQLite format 3\0"));
    for (off, len) in [
        (0, 65536),
        (0, 100),
        (700, 3000),
        (1000, 100),
        (4096, 8192),
        (0, size),
        (size - 500, 1000),
    ] {
        let mut buf = vec![0xee; len];
        let got = file.read_at(&mut buf, off as u64).unwrap();
        assert_eq!(got, len.min(size - off), "{len} bytes at {off}");
        assert!(
            buf[..got] == pages[off..off + got],
            "{len} bytes at {off} differ from the pages read one by one"
        );
    }

    // The decoded bytes written back in spans of every shape, over an
    // empty file: the stored bytes come out exactly as SQLite's page writes
    // left them (the test codec is deterministic).
    file.truncate(0).unwrap();
    let mut off = 0;
    for len in [65536, 3000, 1, 1023, 2048, 700, 100_000].iter().cycle() {
        if off >= size {
            break;
        }
        let end = size.min(off + len);
        file.write_at(&pages[off..end], off as u64).unwrap();
        off = end;
    }
    drop(file);
    assert!(
        std::fs::read(&path).unwrap() == stored,
        "stored bytes differ"
    );
    let conn = env.open_path(&path, "");
    assert_eq!(count(&conn, "SELECT count(*) FROM t"), 300);
    assert_eq!(integrity(&conn), "ok");
}

/// Before the page size is known (no page 1 with a valid header), nothing
/// of a transformed file passes through unmapped: a write that is not a
/// whole page is refused, and a read that is not a whole page of a file
/// whose header names no page size is an error, not the stored bytes.
#[test]
fn without_a_page_size_partial_io_fails_closed() {
    let env = Env::new("no-page-size");
    let path = env.path("n.db");
    let mut file = open_main(&path);
    let err = file.write_at(&[7u8; 3000], 5000).unwrap_err();
    assert_eq!(err.code(), Some(codes::SQLITE_IOERR_WRITE), "{err}");
    assert!(err.message().contains("page size is unknown"), "{err}");
    assert_eq!(file.size().unwrap(), 0, "nothing written");

    // A file whose bytes 16-17 name no valid page size.
    std::fs::write(&path, [b'x'; 2000]).unwrap();
    let mut file = open_main(&path);
    let mut buf = [0u8; 100];
    let err = file.read_at(&mut buf, 0).unwrap_err();
    assert_eq!(err.code(), Some(codes::SQLITE_NOTADB), "{err}");
    assert_eq!(buf, [0u8; 100], "no stored byte handed out");
    // An empty file reads as empty.
    std::fs::write(&path, []).unwrap();
    let mut file = open_main(&path);
    assert_eq!(file.read_at(&mut buf, 0).unwrap(), 0);
}
