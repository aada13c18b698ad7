//! The byte budget: SQLITE_FULL before anything changes, the committed data
//! intact, and room again after DELETE + VACUUM; in rollback and WAL mode.

mod common;

use common::*;
use rusqlite::Connection;
use vfs_core::codes;
use vfs_memdb::MemDb;

const BUDGET: u64 = 600 * 1024;

/// Inserts 3000-byte rows one transaction each until SQLITE_FULL; returns
/// how many committed. Checks the error and that the failed transaction
/// left nothing behind.
fn fill(c: &Connection) -> i64 {
    let mut committed = 0;
    loop {
        let r = c.execute("INSERT INTO t(b) VALUES (randomblob(3000))", []);
        match r {
            Ok(_) => committed += 1,
            Err(e) => {
                assert_eq!(code(&e), Some(codes::SQLITE_FULL), "{e}");
                break;
            }
        }
        assert!(committed < 10_000, "the budget never stopped the writes");
    }
    assert!(c.is_autocommit(), "the failed statement rolled back");
    committed
}

/// Every committed row is there and the database is well formed.
fn check_intact(c: &Connection, rows: i64) {
    assert_eq!(integrity(c), "ok");
    assert_eq!(count(c, "t"), rows);
    let bytes: i64 = c
        .query_row("SELECT sum(length(b)) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(bytes, rows * 3000);
}

fn full_then_free_then_write(test: &str, mode: &str) {
    let mem = MemDb::with_budget(BUDGET);
    let fx = Fixture::with(test, mem.clone());
    let c = fx.open("/full.db");
    assert_eq!(
        c.query_row(&format!("PRAGMA journal_mode={mode}"), [], |r| r
            .get::<_, String>(0))
            .unwrap(),
        mode.to_lowercase()
    );
    c.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB NOT NULL)")
        .unwrap();
    let rows = fill(&c);
    assert!(rows > 100, "only {rows} rows fit");
    assert!(mem.used() <= BUDGET, "{} > {BUDGET}", mem.used());
    check_intact(&c, rows);

    // A multi-row transaction that runs out half way: SQLITE_FULL, then
    // ROLLBACK leaves the database as it was.
    c.execute_batch("BEGIN").unwrap();
    let mut failed = None;
    for _ in 0..100 {
        if let Err(e) = c.execute("INSERT INTO t(b) VALUES (randomblob(3000))", []) {
            failed = Some(e);
            break;
        }
    }
    let failed = match failed {
        Some(e) => e,
        None => c.execute_batch("COMMIT").unwrap_err(),
    };
    assert_eq!(code(&failed), Some(codes::SQLITE_FULL), "{failed}");
    if !c.is_autocommit() {
        c.execute_batch("ROLLBACK").unwrap();
    }
    check_intact(&c, rows);
    // Another connection sees the same committed data.
    check_intact(&fx.open("/full.db"), rows);

    // In WAL mode the database file grows at checkpoints: the budget was
    // enforced on the WAL frames, and a checkpoint brings the file (and
    // `used`) up to the database's real size, still within the budget.
    if mode == "WAL" {
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        assert!(mem.used() > BUDGET / 2, "{}", mem.used());
        assert!(mem.used() <= BUDGET, "{}", mem.used());
    }

    // Free space: delete most rows, VACUUM (and in WAL mode checkpoint so
    // the database file itself shrinks).
    let before = mem.used();
    c.execute_batch("DELETE FROM t WHERE id > 20; VACUUM;")
        .unwrap();
    if mode == "WAL" {
        c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    }
    assert!(
        mem.used() < before / 4,
        "{} not < {}",
        mem.used(),
        before / 4
    );
    check_intact(&c, 20);
    // Writes succeed again, up to the budget again.
    let more = fill(&c);
    assert!(more > 100, "only {more} rows after freeing space");
    check_intact(&c, 20 + more);
    drop(c);
    assert!(mem.used() <= BUDGET);
}

#[test]
fn budget_full_in_rollback_mode() {
    full_then_free_then_write("budget-delete", "DELETE");
}

#[test]
fn budget_full_in_wal_mode() {
    full_then_free_then_write("budget-wal", "WAL");
}

#[test]
fn budget_is_shared_by_the_instance_databases() {
    let mem = MemDb::with_budget(BUDGET);
    let fx = Fixture::with("budget-shared", mem.clone());
    let a = fx.open("/a.db");
    a.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB NOT NULL)")
        .unwrap();
    let rows = fill(&a);
    // The other database has no room left either (a new table needs a page).
    let b = fx.open("/b.db");
    let r = b.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, b BLOB NOT NULL);
         INSERT INTO t(b) VALUES (randomblob(3000)), (randomblob(3000));",
    );
    assert_code(r, codes::SQLITE_FULL);
    check_intact(&a, rows);
    // Deleting database a makes room for b.
    drop(a);
    mem.delete("/a.db").unwrap();
    assert!(mem.used() < 8192, "{}", mem.used());
    b.execute_batch("CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, b BLOB NOT NULL)")
        .unwrap();
    assert!(fill(&b) > 100);
}

#[test]
fn load_over_budget_is_full_and_changes_nothing() {
    let big = MemDb::new();
    let fx = Fixture::with("budget-load-src", big.clone());
    let c = fx.open("/big.db");
    c.execute_batch(
        "CREATE TABLE t(b);
         INSERT INTO t SELECT randomblob(10000) FROM
         (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<100)
          SELECT i FROM n);",
    )
    .unwrap();
    drop(c);
    let image = big.export("/big.db").unwrap();
    assert!(image.len() as u64 > 1_000_000);

    let small = MemDb::with_budget(1_000_000);
    let e = small.load("/big.db", &image).unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_FULL), "{e}");
    assert!(small.list().is_empty());
    assert_eq!(small.used(), 0);
    // Within budget it loads, and counts.
    let roomy = MemDb::with_budget(image.len() as u64);
    roomy.load("/big.db", &image).unwrap();
    assert_eq!(roomy.used(), image.len() as u64);
    assert_eq!(roomy.budget(), Some(image.len() as u64));
    // Replacing it with itself needs no extra room.
    roomy.load("/big.db", &image).unwrap();
    assert_eq!(roomy.used(), image.len() as u64);
}
