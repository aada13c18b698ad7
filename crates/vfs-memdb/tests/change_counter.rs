//! The change counter SQLite reads at each rollback-mode read transaction
//! comes from a copy memdb's writers publish (`src/header.rs`): a
//! connection whose cache predates another's commit must see that commit
//! (fails when a writer's change to the header is not published).

mod common;

use common::*;

fn count(c: &rusqlite::Connection) -> i64 {
    c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_reader_sees_every_commit_of_another_connection() {
    let fx = Fixture::new("change-counter");
    let writer = fx.open("/cc.db");
    writer
        .execute_batch("PRAGMA journal_mode=DELETE; CREATE TABLE t(v);")
        .unwrap();
    let reader = fx.open("/cc.db");
    assert_eq!(count(&reader), 0);
    for n in 1..=20 {
        writer.execute("INSERT INTO t VALUES (?1)", [n]).unwrap();
        // The reader's cache holds the previous state; only a changed
        // counter makes it look again.
        assert_eq!(count(&reader), n);
    }
    // A rollback leaves the counter (and the rows) as they were.
    writer
        .execute_batch("BEGIN; INSERT INTO t VALUES (0); ROLLBACK;")
        .unwrap();
    assert_eq!(count(&reader), 20);
    writer.execute_batch("DELETE FROM t; VACUUM;").unwrap();
    assert_eq!(count(&reader), 0);
}
