//! A panicking backend never unwinds into SQLite: the statement fails, the
//! process and other connections keep working, and the file it panicked on
//! refuses every later call until it is closed (its state may be half
//! updated). (Own test binary: it installs a quiet panic hook.)

mod common;

use common::*;
use rusqlite::Connection;
use vfs_core::{Op, codes};

/// Silences the panics the tests inject; any other (a failed assertion)
/// still prints.
fn quiet_injected_panics() {
    std::panic::set_hook(Box::new(|info| {
        let injected = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.starts_with("injected panic"));
        if !injected {
            eprintln!("{info}");
        }
    }));
}

#[test]
fn panics_in_open_read_write_sync_become_errors() {
    quiet_injected_panics();
    let name = unique_name("panicky");
    let vfs = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let healthy_name = unique_name("healthy");
    let healthy_reg = vfs_core::register(&healthy_name, TestVfs::new(false), false).unwrap();
    let healthy = Connection::open(format!("file:h.db?vfs={healthy_name}")).unwrap();
    healthy.execute_batch("CREATE TABLE t(x)").unwrap();

    let setup = Connection::open(format!("file:p.db?vfs={name}")).unwrap();
    setup
        .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
        .unwrap();
    drop(setup);

    let cases = [
        (Op::Read, "SELECT * FROM t", codes::SQLITE_IOERR_READ),
        (
            Op::Write,
            "INSERT INTO t VALUES (2)",
            codes::SQLITE_IOERR_WRITE,
        ),
        (
            Op::Sync,
            "INSERT INTO t VALUES (3)",
            codes::SQLITE_IOERR_FSYNC,
        ),
    ];
    for (i, (op, sql, expected)) in cases.into_iter().enumerate() {
        // A fresh connection per case: each panic poisons its file.
        let conn = Connection::open(format!("file:p.db?vfs={name}")).unwrap();
        conn.execute_batch("PRAGMA cache_size=0").unwrap();
        vfs.inject(op, Fault::Panic);
        let e = conn
            .execute_batch(sql)
            .expect_err("a panic must fail the statement");
        vfs.clear_faults();
        assert_eq!(code_of(&e), Some(expected), "{op:?}");
        let last = vfs_core::last_error().unwrap();
        assert!(last.message.contains("panicked"), "{last:?}");
        // The other VFS keeps working after each panic.
        healthy
            .execute("INSERT INTO t VALUES (?1)", [i as i64])
            .unwrap();
    }
    // A new connection works once the fault is gone, on intact data.
    let conn = Connection::open(format!("file:p.db?vfs={name}")).unwrap();
    conn.execute_batch("INSERT INTO t VALUES (4)").unwrap();
    assert_eq!(integrity(&conn), "ok");
    drop(conn);

    vfs.inject(Op::Open, Fault::Panic);
    let e = Connection::open(format!("file:q.db?vfs={name}"))
        .and_then(|c| c.execute_batch("CREATE TABLE t(x)").map(|_| c))
        .unwrap_err();
    assert_eq!(code_of(&e), Some(codes::SQLITE_CANTOPEN));
    vfs.clear_faults();

    let n: i64 = healthy
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);
    drop(healthy);
    reg.unregister().unwrap();
    healthy_reg.unregister().unwrap();
}

#[test]
fn a_panic_poisons_the_file_until_it_is_closed() {
    quiet_injected_panics();
    let name = unique_name("poison");
    let vfs = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let conn = Connection::open(format!("file:z.db?vfs={name}")).unwrap();
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1); PRAGMA cache_size=0;")
        .unwrap();

    vfs.inject(Op::Read, Fault::Panic);
    let e = conn.execute_batch("SELECT * FROM t").unwrap_err();
    assert_eq!(code_of(&e), Some(codes::SQLITE_IOERR_READ));
    vfs.clear_faults();

    // The fault is gone, but the file it hit stays refused: the backend is
    // not called again on it, and every refusal names the panic.
    let counters = vfs.counters();
    let reads = counters.reads.load(std::sync::atomic::Ordering::SeqCst);
    let writes = counters.writes.load(std::sync::atomic::Ordering::SeqCst);
    for sql in [
        "SELECT * FROM t",
        "INSERT INTO t VALUES (2)",
        "PRAGMA vfs_test_echo",
    ] {
        let e = conn
            .execute_batch(sql)
            .expect_err("a poisoned file refuses every call");
        assert_eq!(
            code_of(&e).map(|c| c & 0xff),
            Some(codes::SQLITE_IOERR),
            "{sql}: {e}"
        );
        let last = vfs_core::last_error().unwrap();
        assert!(
            last.message
                .contains("panicked during read: injected panic in Read"),
            "{sql}: {last:?}"
        );
    }
    assert_eq!(
        counters.reads.load(std::sync::atomic::Ordering::SeqCst),
        reads
    );
    assert_eq!(
        counters.writes.load(std::sync::atomic::Ordering::SeqCst),
        writes
    );
    // Closing works, and a new connection finds the data intact.
    drop(conn);
    assert_eq!(reg.open_files(), 0);
    let conn = Connection::open(format!("file:z.db?vfs={name}")).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(integrity(&conn), "ok");
    drop(conn);
    reg.unregister().unwrap();
}
