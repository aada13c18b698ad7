//! A panicking backend never unwinds into SQLite: the statement fails, the
//! process and other connections keep working. (Own test binary: it installs
//! a quiet panic hook.)

mod common;

use common::*;
use rusqlite::Connection;
use vfs_core::{Op, codes};

#[test]
fn panics_in_open_read_write_sync_become_errors() {
    std::panic::set_hook(Box::new(|_| {}));
    let name = unique_name("panicky");
    let vfs = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let healthy_name = unique_name("healthy");
    let healthy_reg = vfs_core::register(&healthy_name, TestVfs::new(false), false).unwrap();
    let healthy = Connection::open(format!("file:h.db?vfs={healthy_name}")).unwrap();
    healthy.execute_batch("CREATE TABLE t(x)").unwrap();

    let conn = Connection::open(format!("file:p.db?vfs={name}")).unwrap();
    conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1); PRAGMA cache_size=0;")
        .unwrap();

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
    // The panicking connection itself recovers once the fault is gone.
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
    let _ = std::panic::take_hook();
    reg.unregister().unwrap();
    healthy_reg.unregister().unwrap();
}
