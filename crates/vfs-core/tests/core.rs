//! vfs-core through rusqlite: registration, error codes, URI parameters,
//! locking, and a shim over the native base.

mod common;

use common::*;
use rusqlite::{Connection, OpenFlags};
use vfs_core::{FileKind, Native, Op, codes};

/// Opens `db` on `vfs` with no busy timeout (rusqlite's default is 5 s), so
/// BUSY answers come back at once.
fn open(vfs: &str, db: &str) -> Connection {
    let conn = Connection::open(format!("file:{db}?vfs={vfs}")).expect("open through the VFS");
    conn.busy_timeout(std::time::Duration::ZERO).unwrap();
    conn
}

#[test]
fn create_insert_select_and_integrity() {
    let name = unique_name("basic");
    let vfs = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let conn = open(&name, "app.db");
    conn.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t(v) VALUES ('alpha'), ('beta'), ('gamma');",
    )
    .unwrap();
    let rows: Vec<String> = conn
        .prepare("SELECT v FROM t ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows, ["alpha", "beta", "gamma"]);
    assert_eq!(integrity(&conn), "ok");
    // The data really lives in the backend: a SQLite header is on the medium.
    let bytes = vfs.bytes("app.db").unwrap();
    assert_eq!(&bytes[..16], b"SQLite format 3\0");
    drop(conn);
    reg.unregister().unwrap();
}

#[test]
fn unregister_refuses_while_open_then_succeeds_and_reregisters() {
    let name = unique_name("unreg");
    let reg = vfs_core::register(&name, TestVfs::new(false), false).unwrap();
    let conn = open(&name, "u.db");
    conn.execute_batch("CREATE TABLE t(x)").unwrap();
    assert!(reg.open_files() >= 1);
    let (reg, err) = reg
        .unregister()
        .expect_err("must refuse while a file is open");
    assert_eq!(err.code(), Some(codes::SQLITE_BUSY));
    assert!(
        err.message().contains("open file"),
        "message names the problem: {err}"
    );
    assert!(vfs_core::find(&name), "still registered after refusal");
    drop(conn);
    assert_eq!(reg.open_files(), 0);
    reg.unregister().unwrap();
    assert!(!vfs_core::find(&name));
    // Opening by the old name now fails cleanly.
    let e = Connection::open(format!("file:u.db?vfs={name}")).unwrap_err();
    assert!(e.to_string().contains("no such vfs"), "{e}");
    // The same name can be registered again.
    let reg = vfs_core::register(&name, TestVfs::new(false), false).unwrap();
    let conn = open(&name, "u.db");
    conn.execute_batch("CREATE TABLE t(x)").unwrap();
    drop(conn);
    reg.unregister().unwrap();
}

#[test]
fn duplicate_and_empty_names_are_refused() {
    let name = unique_name("dup");
    let reg = vfs_core::register(&name, TestVfs::new(false), false).unwrap();
    let e = vfs_core::register(&name, TestVfs::new(false), false).unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_MISUSE));
    assert!(e.message().contains("already registered"), "{e}");
    let e = vfs_core::register("", TestVfs::new(false), false).unwrap_err();
    assert!(e.message().contains("empty"), "{e}");
    // SQLite's own VFS names are taken too.
    let e = vfs_core::register("unix", TestVfs::new(false), false).unwrap_err();
    assert!(e.message().contains("already registered"), "{e}");
    let e = vfs_core::unregister("never-registered-here").unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_NOTFOUND));
    reg.unregister().unwrap();
}

/// Runs `sql` on a fresh database of a VFS whose main-db `op` fails with
/// `fault`, and returns the extended code rusqlite reports.
fn code_for_fault(op: Op, fault: Fault, sql: &str) -> i32 {
    let name = unique_name("fault");
    let vfs = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let conn = open(&name, "f.db");
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    // Make the next statement go to the medium for reads.
    conn.execute_batch("PRAGMA cache_size=0").unwrap();
    vfs.inject(op, fault);
    let err = conn.execute_batch(sql).expect_err("the fault must surface");
    vfs.clear_faults();
    // The connection stays usable.
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 1);
    assert_eq!(integrity(&conn), "ok");
    drop(conn);
    reg.unregister().unwrap();
    code_of(&err).expect("an SQLite error")
}

#[test]
fn backend_codes_reach_the_application_exactly() {
    let write = "INSERT INTO t VALUES (2)";
    assert_eq!(
        code_for_fault(Op::Write, Fault::Code(codes::SQLITE_FULL), write),
        codes::SQLITE_FULL
    );
    assert_eq!(
        code_for_fault(Op::Lock, Fault::Code(codes::SQLITE_BUSY), write),
        codes::SQLITE_BUSY
    );
    assert_eq!(
        code_for_fault(Op::Write, Fault::Code(codes::SQLITE_READONLY), write),
        codes::SQLITE_READONLY
    );
    assert_eq!(
        code_for_fault(
            Op::Read,
            Fault::Code(codes::SQLITE_IOERR_DATA),
            "SELECT * FROM t"
        ),
        codes::SQLITE_IOERR_DATA
    );
}

#[test]
fn plain_io_errors_take_the_operations_default_code() {
    assert_eq!(
        code_for_fault(Op::Read, Fault::Io, "SELECT * FROM t"),
        codes::SQLITE_IOERR_READ
    );
    assert_eq!(
        code_for_fault(Op::Write, Fault::Io, "INSERT INTO t VALUES (2)"),
        codes::SQLITE_IOERR_WRITE
    );
    assert_eq!(
        code_for_fault(Op::Sync, Fault::Io, "INSERT INTO t VALUES (2)"),
        codes::SQLITE_IOERR_FSYNC
    );
    let detail = vfs_core::last_error().expect("the message is kept");
    assert_eq!(detail.code, codes::SQLITE_IOERR_FSYNC);
    assert_eq!(detail.op, Op::Sync);
    assert!(
        detail.message.contains("injected Sync I/O error"),
        "{detail:?}"
    );
}

#[test]
fn open_failure_is_cantopen_with_message() {
    let name = unique_name("openfail");
    let vfs = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    vfs.inject(Op::Open, Fault::Io);
    let e = Connection::open(format!("file:x.db?vfs={name}"))
        .and_then(|c| c.execute_batch("CREATE TABLE t(x)").map(|_| c))
        .unwrap_err();
    assert_eq!(code_of(&e), Some(codes::SQLITE_CANTOPEN));
    assert_eq!(vfs_core::open_files(&name), Some(0));
    vfs.clear_faults();
    reg.unregister().unwrap();
}

#[test]
fn uri_parameters_and_database_name_are_visible_to_open() {
    let name = unique_name("uri");
    let vfs = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let conn = Connection::open(format!("file:p.db?vfs={name}&flavour=mint")).unwrap();
    conn.execute_batch("PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let seen = vfs.seen();
    let main = seen.iter().find(|s| s.0 == FileKind::MainDb).unwrap();
    assert_eq!(main.1.as_deref(), Some("p.db"));
    assert_eq!(main.3.as_deref(), Some("mint"));
    let journal = seen
        .iter()
        .find(|s| s.0 == FileKind::MainJournal)
        .expect("a rollback journal was opened");
    assert_eq!(journal.1.as_deref(), Some("p.db-journal"));
    assert_eq!(
        journal.2.as_deref(),
        Some("p.db"),
        "journal knows its database"
    );
    assert_eq!(
        journal.3.as_deref(),
        Some("mint"),
        "journal sees the URI too"
    );
    drop(conn);
    reg.unregister().unwrap();
}

#[test]
fn second_writer_gets_busy_then_succeeds_after_commit() {
    let name = unique_name("locks");
    let reg = vfs_core::register(&name, TestVfs::new(false), false).unwrap();
    let a = open(&name, "l.db");
    let b = open(&name, "l.db");
    a.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    a.execute_batch("BEGIN IMMEDIATE; INSERT INTO t VALUES (2);")
        .unwrap();
    let e = b.execute_batch("INSERT INTO t VALUES (3)").unwrap_err();
    assert_eq!(code_of(&e), Some(codes::SQLITE_BUSY));
    // A reader is not blocked by RESERVED and sees only committed data.
    let n: i64 = b
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    a.execute_batch("COMMIT").unwrap();
    b.execute_batch("INSERT INTO t VALUES (3)").unwrap();
    let n: i64 = a
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
    drop((a, b));
    reg.unregister().unwrap();
}

#[test]
fn temp_files_are_deleted_on_close() {
    let name = unique_name("temp");
    let vfs = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let conn = open(&name, "t.db");
    conn.execute_batch(
        "PRAGMA temp_store=FILE; PRAGMA cache_size=10;
         CREATE TABLE t(x);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<20000)
         INSERT INTO t SELECT hex(randomblob(40)) FROM c;
         CREATE TEMP TABLE tt AS SELECT * FROM t ORDER BY x;",
    )
    .unwrap();
    let sorted: i64 = conn
        .query_row(
            "SELECT count(*) FROM (SELECT x FROM t ORDER BY x DESC)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(sorted, 20000);
    drop(conn);
    let kinds: Vec<FileKind> = vfs.seen().iter().map(|s| s.0).collect();
    assert!(kinds.contains(&FileKind::TempDb), "temp db used: {kinds:?}");
    // Only the main database remains: temp files were deleted on close.
    assert_eq!(vfs.file_names(), ["t.db"]);
    reg.unregister().unwrap();
}

#[test]
fn type_erased_registration_works() {
    let name = unique_name("dyn");
    let chosen: Box<dyn vfs_core::DynVfs> = vfs_core::erase(TestVfs::new(true));
    let reg = vfs_core::register(&name, chosen, false).unwrap();
    let conn = open(&name, "d.db");
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (7);")
        .unwrap();
    assert_eq!(integrity(&conn), "ok");
    drop(conn);
    reg.unregister().unwrap();
}

#[test]
fn shim_over_native_is_readable_by_plain_sqlite_and_shares_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("native.db");
    let name = unique_name("pass-native");
    let reg = vfs_core::register(&name, PassThrough(Native::new().unwrap()), false).unwrap();
    let uri = format!("file:{}?vfs={name}", path.display());
    let a = Connection::open(&uri).unwrap();
    let b = Connection::open(&uri).unwrap();
    let mode: String = a
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal", "shared memory forwarded to the native base");
    a.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let n: i64 = b
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1, "b sees a's commit");
    b.execute_batch("INSERT INTO t VALUES (41)").unwrap();
    let n: i64 = a
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 42, "a sees b's commit");
    // Plain SQLite (default unix VFS) reads the same file while the shim's
    // connections are open: cross-VFS WAL through the native shm.
    let plain = Connection::open(format!("file:{}?vfs=unix", path.display())).unwrap();
    let n: i64 = plain
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 42);
    drop((a, b, plain));
    // And after everything closed, with no shim at all.
    let plain = Connection::open(format!("file:{}?vfs=unix", path.display())).unwrap();
    assert_eq!(integrity(&plain), "ok");
    let n: i64 = plain
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    drop(plain);
    reg.unregister().unwrap();
}

#[test]
fn native_base_rollback_journal_and_busy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rb.db");
    let name = unique_name("native-rb");
    let reg = vfs_core::register(&name, Native::new().unwrap(), false).unwrap();
    let uri = format!("file:{}?vfs={name}", path.display());
    let a = Connection::open(&uri).unwrap();
    let b = Connection::open(&uri).unwrap();
    b.busy_timeout(std::time::Duration::ZERO).unwrap();
    a.execute_batch("CREATE TABLE t(x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1);")
        .unwrap();
    let e = b.execute_batch("INSERT INTO t VALUES (2)").unwrap_err();
    assert_eq!(code_of(&e), Some(codes::SQLITE_BUSY));
    a.execute_batch("ROLLBACK").unwrap();
    b.execute_batch("INSERT INTO t VALUES (2)").unwrap();
    let n: i64 = a
        .query_row("SELECT sum(x) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    drop((a, b));
    reg.unregister().unwrap();
}

#[test]
fn pragmas_reach_the_file_and_errors_carry_the_message() {
    let name = unique_name("pragma");
    let reg = vfs_core::register(&name, TestVfs::new(false), false).unwrap();
    let conn = open(&name, "p.db");
    let echoed: String = conn
        .query_row("PRAGMA vfs_test_echo=hello", [], |r| r.get(0))
        .unwrap();
    assert_eq!(echoed, "hello");
    let e = conn.execute_batch("PRAGMA vfs_test_fail").unwrap_err();
    assert!(e.to_string().contains("told to fail"), "{e}");
    // Pragmas the file does not know go to SQLite as usual.
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    drop(conn);
    reg.unregister().unwrap();
}

#[test]
fn every_rollback_journal_mode_round_trips() {
    for mode in ["DELETE", "TRUNCATE", "PERSIST", "MEMORY", "OFF"] {
        let name = unique_name("jmode");
        let vfs = TestVfs::new(false);
        let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
        let conn = open(&name, "j.db");
        let got: String = conn
            .query_row(&format!("PRAGMA journal_mode={mode}"), [], |r| r.get(0))
            .unwrap();
        assert_eq!(got, mode.to_lowercase());
        conn.execute_batch(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<500)
             INSERT INTO t SELECT i, randomblob(300) FROM c;
             DELETE FROM t WHERE id % 3 = 0;
             VACUUM;",
        )
        .unwrap();
        if mode != "OFF" {
            conn.execute_batch("BEGIN; DELETE FROM t; ROLLBACK;")
                .unwrap();
        }
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 334, "{mode}");
        assert_eq!(integrity(&conn), "ok", "{mode}");
        let names = vfs.file_names();
        match mode {
            "DELETE" | "MEMORY" | "OFF" => assert_eq!(names, ["j.db"], "{mode}"),
            _ => assert!(
                names.contains(&"j.db-journal".to_owned()),
                "{mode}: {names:?}"
            ),
        }
        drop(conn);
        reg.unregister().unwrap();
    }
}

/// A backend that overrides the clock: SQLite's `now` comes from it.
struct FixedClock(TestVfs);

impl vfs_core::Vfs for FixedClock {
    type File = <TestVfs as vfs_core::Vfs>::File;
    fn open(
        &self,
        name: &vfs_core::OpenName<'_>,
        opts: vfs_core::OpenOptions,
    ) -> vfs_core::Result<Self::File> {
        self.0.open(name, opts)
    }
    fn delete(&self, name: &vfs_core::FileName, sync_dir: bool) -> vfs_core::Result<()> {
        self.0.delete(name, sync_dir)
    }
    fn access(
        &self,
        name: &vfs_core::FileName,
        check: vfs_core::AccessCheck,
    ) -> vfs_core::Result<bool> {
        self.0.access(name, check)
    }
    fn current_time_ms(&self) -> Option<i64> {
        // 2000-01-01 12:00:00 UTC as milliseconds since the Julian epoch.
        Some(2_451_545 * 86_400_000)
    }
}

#[test]
fn clock_is_delegated_unless_overridden() {
    let name = unique_name("clock");
    let reg = vfs_core::register(&name, FixedClock(TestVfs::new(false)), false).unwrap();
    let conn = open(&name, "c.db");
    let now: String = conn
        .query_row("SELECT datetime('now')", [], |r| r.get(0))
        .unwrap();
    assert_eq!(now, "2000-01-01 12:00:00");
    drop(conn);
    reg.unregister().unwrap();

    // Without an override the platform clock answers.
    let name = unique_name("clock-platform");
    let reg = vfs_core::register(&name, TestVfs::new(false), false).unwrap();
    let conn = open(&name, "c.db");
    let unix: i64 = conn
        .query_row("SELECT unixepoch('now')", [], |r| r.get(0))
        .unwrap();
    let sys = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((unix - sys).abs() < 60, "sqlite {unix} vs system {sys}");
    drop(conn);
    reg.unregister().unwrap();
}

#[test]
fn load_extension_goes_through_the_platform_loader() {
    let name = unique_name("dl");
    let reg = vfs_core::register(&name, TestVfs::new(false), false).unwrap();
    let conn = open(&name, "dl.db");
    // SAFETY: enabling extension loading on a private connection in a test;
    // we only try to load a file that does not exist.
    unsafe {
        conn.load_extension_enable().unwrap();
        let e = conn
            .load_extension("/nonexistent/dir/libnothing", None::<&str>)
            .unwrap_err();
        // The text comes from the platform's dlerror through xDlError.
        let text = e.to_string();
        assert!(
            text.contains("libnothing") && text.contains("cannot open shared object"),
            "{e}"
        );
    }
    drop(conn);
    reg.unregister().unwrap();
}

/// `SQLITE_OPEN_NOFOLLOW` refuses a database reached through a symbolic
/// link: the native base reports the link (`SQLITE_OK_SYMLINK`) and shims
/// pass that up (SQLite's symlink.test found it dropped).
#[test]
fn nofollow_refuses_a_symbolic_link_through_a_shim() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.db");
    let link = dir.path().join("link.db");
    Connection::open(format!("file:{}?vfs=unix", real.display()))
        .unwrap()
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let name = unique_name("nofollow");
    let reg = vfs_core::register(&name, PassThrough(Native::new().unwrap()), false).unwrap();
    let uri = format!("file:{}?vfs={name}", link.display());
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_URI;
    let e = Connection::open_with_flags(&uri, flags | OpenFlags::SQLITE_OPEN_NOFOLLOW)
        .and_then(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)))
        .unwrap_err();
    assert_eq!(
        code_of(&e),
        Some(libsqlite3_sys::SQLITE_CANTOPEN_SYMLINK),
        "{e}"
    );
    // Without NOFOLLOW the link is followed as usual.
    let c = Connection::open_with_flags(&uri, flags).unwrap();
    let n: i64 = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    drop(c);
    reg.unregister().unwrap();
}

/// A backend that claims page layers (as a stack of page-transforming
/// shims would): `register` checks them.
struct Claims(TestVfs, Vec<vfs_core::PageLayer>);

impl vfs_core::Vfs for Claims {
    type File = <TestVfs as vfs_core::Vfs>::File;
    fn open(
        &self,
        name: &vfs_core::OpenName<'_>,
        opts: vfs_core::OpenOptions,
    ) -> vfs_core::Result<Self::File> {
        self.0.open(name, opts)
    }
    fn page_layers(&self) -> vfs_core::PageLayers {
        let mut layers = vfs_core::PageLayers::default();
        for l in &self.1 {
            layers.push(*l);
        }
        layers
    }
    vfs_core::forward_vfs!(0, except page_layers);
}

fn claims(layers: &[(&'static str, usize, usize)]) -> Claims {
    let layers = layers
        .iter()
        .map(|&(name, reserve, min_page_size)| vfs_core::PageLayer {
            name,
            reserve,
            min_page_size,
        })
        .collect();
    Claims(TestVfs::new(false), layers)
}

#[test]
fn a_stack_whose_page_layers_cannot_work_is_refused_at_registration() {
    let name = unique_name("layers");
    // More reserved bytes than the header's byte records, seen through the
    // type-erased form and an `Arc` (both forward the question).
    let six = [("crypto", 48, 1024); 6];
    for vfs in [
        vfs_core::erase(claims(&six)),
        vfs_core::erase(std::sync::Arc::new(claims(&six))),
    ] {
        let e = vfs_core::register(&name, vfs, false).unwrap_err();
        assert_eq!(e.code(), Some(codes::SQLITE_MISUSE));
        assert!(e.message().contains(&name), "{e}");
        assert!(
            e.message()
                .contains("crypto (48 bytes) over crypto (48 bytes)"),
            "{e}"
        );
        assert!(e.message().contains("288 reserved bytes"), "{e}");
    }
    // Too few usable bytes in the smallest page every layer accepts.
    let e = vfs_core::register(&name, claims(&[("cksm", 8, 512), ("wide", 40, 512)]), false)
        .unwrap_err();
    assert!(
        e.message().contains("wide (40 bytes) over cksm (8 bytes)"),
        "{e}"
    );
    assert!(e.message().contains("leaves 464 usable bytes"), "{e}");
    // Nothing was registered: the name is free for a stack that works.
    assert!(!vfs_core::find(&name));
    let reg = vfs_core::register(
        &name,
        claims(&[("cksm", 8, 512), ("crypto", 48, 1024)]),
        false,
    )
    .unwrap();
    reg.unregister().unwrap();
}
