//! The fault layer seen from SQLite: injected codes reach the application,
//! tears and power cuts leave what the model promises.

use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::{Connection, ErrorCode};
use vfs_core::{FileKind, Native, Op, Registration, codes, register};
use vfs_fault::{Action, Failure, Fault, FaultController, MemDisk, OpSet, Rule, TearOutcome};

static NEXT: AtomicUsize = AtomicUsize::new(0);

struct Env {
    ctl: FaultController,
    reg: Option<Registration>,
    _dir: Option<tempfile::TempDir>,
    db: String,
}

impl Env {
    fn native(test: &str) -> Env {
        let fault = Fault::new(Native::new().unwrap());
        let ctl = fault.controller();
        let name = format!("fault-{test}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let reg = register(&name, fault, false).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let db = format!("file:{}?vfs={name}", dir.path().join("t.db").display());
        Env {
            ctl,
            reg: Some(reg),
            _dir: Some(dir),
            db,
        }
    }

    fn memdisk(test: &str) -> (Env, MemDisk) {
        let disk = MemDisk::new();
        let fault = Fault::new(disk.clone());
        let ctl = fault.controller();
        let name = format!("fault-{test}-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let reg = register(&name, fault, false).unwrap();
        let db = format!("file:/m/t.db?vfs={name}");
        (
            Env {
                ctl,
                reg: Some(reg),
                _dir: None,
                db,
            },
            disk,
        )
    }

    fn open(&self) -> Connection {
        let c = Connection::open(&self.db).unwrap();
        c.busy_timeout(std::time::Duration::ZERO).unwrap();
        c
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(reg) = self.reg.take()
            && !std::thread::panicking()
        {
            reg.unregister().unwrap();
        }
    }
}

fn code(e: &rusqlite::Error) -> i32 {
    e.sqlite_error().map_or(-1, |e| e.extended_code)
}

fn count(c: &Connection) -> i64 {
    c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

fn integrity(c: &Connection) -> String {
    c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn each_injected_code_reaches_the_application_and_the_connection_survives() {
    let env = Env::native("codes");
    let c = env.open();
    c.execute_batch("PRAGMA journal_mode=DELETE; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    let cases: [(Rule, i32); 7] = [
        (
            Rule::fail(Op::Write, Failure::Io),
            codes::SQLITE_IOERR_WRITE,
        ),
        (Rule::fail(Op::Sync, Failure::Io), codes::SQLITE_IOERR_FSYNC),
        (
            Rule::fail(Op::Write, Failure::full()).file_kind(FileKind::MainJournal),
            codes::SQLITE_FULL,
        ),
        (Rule::fail(Op::Lock, Failure::busy()), codes::SQLITE_BUSY),
        (Rule::fail(Op::Lock, Failure::Io), codes::SQLITE_IOERR_LOCK),
        (
            Rule::fail(Op::Open, Failure::Io).file_kind(FileKind::MainJournal),
            codes::SQLITE_CANTOPEN,
        ),
        (
            Rule::fail(Op::Delete, Failure::Io).file_kind(FileKind::MainJournal),
            codes::SQLITE_IOERR_DELETE,
        ),
    ];
    let mut expected_rows = 1;
    for (rule, want) in cases {
        let desc = format!("{rule:?}");
        let id = env.ctl.add(rule);
        let r = c.execute("INSERT INTO t VALUES (2)", []);
        assert_eq!(env.ctl.fired(id), 1, "{desc}");
        let e = r.expect_err(&desc);
        assert_eq!(code(&e), want, "{desc}: {e}");
        // A failed journal delete comes after the database was written: the
        // journal is still hot, so SQLite may roll the commit back; either
        // outcome is consistent since the commit was reported as failed.
        let n = count(&c);
        if want == codes::SQLITE_IOERR_DELETE && n == expected_rows + 1 {
            expected_rows += 1;
        }
        assert_eq!(n, expected_rows, "{desc}");
        c.execute("INSERT INTO t VALUES (3)", []).unwrap();
        expected_rows += 1;
        assert_eq!(integrity(&c), "ok");
    }
    drop(c);
    let c = env.open();
    assert_eq!(count(&c), expected_rows);
}

#[test]
fn a_read_error_surfaces_with_its_code() {
    let env = Env::native("read");
    let c = env.open();
    c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(c);
    let c = env.open();
    env.ctl
        .add(Rule::fail(Op::Read, Failure::Io).file_kind(FileKind::MainDb));
    let e = c
        .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
        .unwrap_err();
    assert_eq!(code(&e), codes::SQLITE_IOERR_READ);
    assert_eq!(count(&c), 1);
}

#[test]
fn persistent_rules_keep_firing_until_removed() {
    let env = Env::native("persistent");
    let c = env.open();
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    let id = env
        .ctl
        .add(Rule::fail(Op::Write, Failure::full()).nth(2).persistent());
    // Two writes per commit at least (journal, database): every insert
    // fails from the second write on.
    for _ in 0..3 {
        let e = c.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
        assert_eq!(e.sqlite_error_code(), Some(ErrorCode::DiskFull));
    }
    assert!(env.ctl.fired(id) >= 3);
    assert!(env.ctl.remove(id));
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    assert_eq!(count(&c), 1);
    assert_eq!(integrity(&c), "ok");
}

#[test]
fn counting_is_exact_and_rules_hit_the_nth_operation() {
    let (env, _disk) = Env::memdisk("count");
    let c = env.open();
    c.execute_batch("CREATE TABLE t(x)").unwrap();
    env.ctl.reset_counts();
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    let writes = env.ctl.op_count(Op::Write);
    let syncs = env.ctl.op_count(Op::Sync);
    assert!(writes >= 2 && syncs >= 1, "{writes} writes, {syncs} syncs");
    assert_eq!(
        env.ctl.count(OpSet::ALL),
        env.ctl.total_ops(),
        "the per-op counts add up"
    );
    // The last write of an identical insert fails: the statement fails.
    let id = env.ctl.add(Rule::fail(Op::Write, Failure::Io).nth(writes));
    let e = c.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    assert_eq!(code(&e), codes::SQLITE_IOERR_WRITE);
    assert_eq!(env.ctl.seen(id), writes);
    let events = env.ctl.events();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].op, Op::Write);
    assert_eq!(events[0].action, Action::Fail(Failure::Io));
}

#[test]
fn torn_write_reported_as_failure_is_rolled_back_by_sqlite() {
    let env = Env::native("tear");
    let c = env.open();
    c.execute_batch(
        "PRAGMA journal_mode=TRUNCATE; CREATE TABLE t(x); \
         INSERT INTO t SELECT randomblob(3000) FROM generate_series(1, 20);",
    )
    .unwrap_or_else(|_| {
        // generate_series may be absent: fall back to a recursive CTE.
        c.execute_batch(
            "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<20) \
             INSERT INTO t SELECT randomblob(3000) FROM s;",
        )
        .unwrap()
    });
    let before: Vec<Vec<u8>> = rows(&c);
    env.ctl
        .add(Rule::tear(512, TearOutcome::ReportError(Failure::Io)).file_kind(FileKind::MainDb));
    let e = c
        .execute("UPDATE t SET x = randomblob(3000)", [])
        .unwrap_err();
    assert_eq!(code(&e), codes::SQLITE_IOERR_WRITE);
    assert_eq!(env.ctl.faults_fired(), 1);
    // SQLite rolls the half-written page back from its journal.
    assert_eq!(rows(&c), before);
    assert_eq!(integrity(&c), "ok");
    drop(c);
    let c = env.open();
    assert_eq!(rows(&c), before);
    assert_eq!(integrity(&c), "ok");
}

#[test]
fn torn_write_reported_as_success_corrupts_silently() {
    // The layer can lie, as a bad disk would: a database page half written
    // and acknowledged. SQLite cannot know; a checksum layer would.
    let (env, _disk) = Env::memdisk("tear-ok");
    let c = env.open();
    c.execute_batch(
        "PRAGMA journal_mode=TRUNCATE; CREATE TABLE t(x); CREATE INDEX ti ON t(x); \
         WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM s WHERE i<200) \
         INSERT INTO t SELECT hex(randomblob(40)) FROM s;",
    )
    .unwrap();
    env.ctl.add(
        Rule::tear(0, TearOutcome::ReportSuccess)
            .file_kind(FileKind::MainDb)
            .persistent(),
    );
    c.execute("UPDATE t SET x = 'changed'", []).unwrap();
    env.ctl.clear_rules();
    drop(c);
    let c = env.open();
    let check: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap_or_else(|e| e.to_string());
    let same: Result<i64, _> = c.query_row("SELECT count(*) FROM t WHERE x = 'changed'", [], |r| {
        r.get(0)
    });
    assert!(
        check != "ok" || !matches!(same, Ok(200)),
        "lost writes went unnoticed by the test"
    );
}

fn rows(c: &Connection) -> Vec<Vec<u8>> {
    let mut s = c.prepare("SELECT x FROM t ORDER BY rowid").unwrap();
    s.query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn power_cut_drops_unsynced_writes_and_refuses_work_until_restart() {
    let (env, disk) = Env::memdisk("cut");
    let c = env.open();
    c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE t(x);")
        .unwrap();
    c.execute("INSERT INTO t VALUES (1)", []).unwrap();
    c.execute_batch("PRAGMA synchronous=OFF").unwrap();
    // Committed but never synced: lost at the cut.
    c.execute("INSERT INTO t VALUES (2)", []).unwrap();
    assert!(!env.ctl.unsynced_paths().is_empty());
    env.ctl.cut_power_now();
    assert!(!env.ctl.is_powered());
    let e = c.execute("INSERT INTO t VALUES (3)", []).unwrap_err();
    assert_eq!(e.sqlite_error_code(), Some(ErrorCode::SystemIoFailure));
    drop(c);
    // Still off: a new connection cannot read either.
    assert!(
        Connection::open(&env.db)
            .and_then(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0)))
            .is_err()
    );
    env.ctl.restart().unwrap();
    assert!(env.ctl.unsynced_paths().is_empty());
    let c = env.open();
    assert_eq!(count(&c), 1);
    assert_eq!(integrity(&c), "ok");
    assert!(disk.contents("/m/t.db").is_some());
}

#[test]
fn a_new_database_never_synced_vanishes_at_a_cut() {
    let (env, disk) = Env::memdisk("vanish");
    let c = env.open();
    c.execute_batch("PRAGMA synchronous=OFF; CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    assert!(disk.contents("/m/t.db").is_some());
    env.ctl.cut_power_now();
    drop(c);
    env.ctl.restart().unwrap();
    assert_eq!(disk.contents("/m/t.db"), None);
    assert!(disk.paths().is_empty(), "{:?}", disk.paths());
}

/// With synchronous=FULL, DELETE mode unlinks the journal without syncing
/// the directory: a cut right after the acknowledged commit brings the hot
/// journal back and SQLite rolls the commit back. EXTRA syncs the
/// directory and keeps it.
#[test]
fn delete_mode_needs_synchronous_extra_to_keep_an_acknowledged_commit() {
    for (sync, kept) in [("FULL", false), ("EXTRA", true)] {
        let env = Env::native(&format!("delete-{sync}"));
        let c = env.open();
        c.execute_batch(&format!(
            "PRAGMA journal_mode=DELETE; PRAGMA synchronous={sync}; \
             CREATE TABLE t(x); INSERT INTO t VALUES (1);"
        ))
        .unwrap();
        env.ctl.persist_all().unwrap();
        c.execute("INSERT INTO t VALUES (2)", []).unwrap();
        env.ctl.cut_power_now();
        drop(c);
        env.ctl.restart().unwrap();
        let c = env.open();
        assert_eq!(integrity(&c), "ok");
        assert_eq!(count(&c) == 2, kept, "synchronous={sync}");
    }
}

#[test]
fn a_cut_at_every_durability_point_of_one_commit_is_all_or_nothing() {
    for mode in ["DELETE", "TRUNCATE", "PERSIST", "WAL"] {
        let sync = if mode == "DELETE" { "EXTRA" } else { "FULL" };
        let (env, _disk) = Env::memdisk(&format!("points-{mode}"));
        let setup = |env: &Env| {
            let c = env.open();
            c.execute_batch(&format!(
                "PRAGMA journal_mode={mode}; PRAGMA synchronous={sync}; \
                 CREATE TABLE IF NOT EXISTS t(x); DELETE FROM t; INSERT INTO t VALUES (1);"
            ))
            .unwrap();
            env.ctl.persist_all().unwrap();
            c
        };
        let c = setup(&env);
        env.ctl.reset_counts();
        c.execute("INSERT INTO t SELECT x + 1 FROM t", []).unwrap();
        let points = env.ctl.count(OpSet::DURABILITY);
        drop(c);
        assert!(points >= 3, "{mode}: {points}");
        for n in 1..=points + 1 {
            let c = setup(&env);
            env.ctl.cut_power_at(n);
            let acked = c.execute("INSERT INTO t SELECT x + 1 FROM t", []).is_ok();
            if env.ctl.is_powered() {
                env.ctl.cut_power_now();
            }
            drop(c);
            env.ctl.restart().unwrap();
            env.ctl.clear_rules();
            let c = env.open();
            assert_eq!(integrity(&c), "ok", "{mode} point {n}");
            let n_rows = count(&c);
            assert!(n_rows == 1 || n_rows == 2, "{mode} point {n}: {n_rows}");
            if acked {
                assert_eq!(n_rows, 2, "{mode} point {n}: acknowledged commit lost");
            }
        }
    }
}
