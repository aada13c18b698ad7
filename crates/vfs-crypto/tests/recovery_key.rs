//! Crash recovery treats a record or frame that does not authenticate as
//! torn only once page 1 has authenticated under the key in use (issue
//! #17, finding 3). A wrong key whose 24-bit check value happens to match
//! (1 in 2^24; forced here with a test hook) must not make a hot journal or
//! a WAL look torn: that would half roll back the database, or drop
//! committed transactions at the next checkpoint.

mod common;

use common::*;

const ROWS: usize = 150;

fn wrong_key() -> String {
    format!("&hexkey={HEX2}")
}

/// A crash copy of a rollback-mode database in the middle of a transaction
/// that spilled to the database file: `(database, journal)`.
fn crashed_transaction(env: &Env, db: &str) -> (Vec<u8>, Vec<u8>) {
    let conn = env.open(db, &hexkey());
    conn.execute_batch("PRAGMA journal_mode=DELETE").unwrap();
    fill(&conn, ROWS);
    conn.execute_batch("PRAGMA cache_size=2; BEGIN; UPDATE t SET v = v || ' crashed';")
        .unwrap();
    let journal = env.raw(db, "-journal").unwrap();
    let image = stored(env, db);
    conn.execute_batch("ROLLBACK").unwrap();
    (image, journal)
}

/// A crash copy of a WAL-mode database whose WAL holds committed,
/// un-checkpointed transactions: `(database, wal)`.
fn crashed_wal(env: &Env, db: &str) -> (Vec<u8>, Vec<u8>) {
    let conn = env.open(db, &hexkey());
    assert_eq!(text(&conn, "PRAGMA journal_mode=WAL"), "wal");
    fill(&conn, ROWS);
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE); PRAGMA wal_autocheckpoint=0;")
        .unwrap();
    conn.execute_batch("UPDATE t SET v = v || ' committed'")
        .unwrap();
    let wal = env.raw(db, "-wal").unwrap();
    let image = stored(env, db);
    drop(conn);
    (image, wal)
}

fn stored(env: &Env, db: &str) -> Vec<u8> {
    if env.stack.on_disk() {
        std::fs::read(db).unwrap()
    } else {
        env.mem.as_ref().unwrap().file_bytes(db).unwrap()
    }
}

fn restore(env: &Env, db: &str, image: &[u8], companion: &str, bytes: &[u8]) {
    if env.stack.on_disk() {
        std::fs::write(db, image).unwrap();
    } else {
        env.mem.as_ref().unwrap().load_raw(db, image).unwrap();
    }
    env.plant(&format!("{db}{companion}"), bytes);
}

/// The wrong key gets an error and leaves the log alone.
fn wrong_key_fails(env: &Env, db: &str) {
    env.codec.force_key_check_collision(true);
    let conn = env.open(db, &wrong_key());
    let r = conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0));
    assert!(
        r.is_err(),
        "{:?}: the wrong key read the database",
        env.stack
    );
    drop(conn);
    env.codec.force_key_check_collision(false);
}

#[test]
fn a_colliding_wrong_key_does_not_roll_back_a_hot_journal_as_torn() {
    for stack in [Stack::Native, Stack::Mem, Stack::CksmNative] {
        let env = Env::new("kcv-journal", stack);
        let db = env.db("j.db");
        let (image, journal) = crashed_transaction(&env, &db);
        restore(&env, &db, &image, "-journal", &journal);
        wrong_key_fails(&env, &db);
        assert!(
            env.exists(&format!("{db}-journal")),
            "{stack:?}: the hot journal was kept"
        );
        // The right key rolls the crashed transaction back completely.
        let conn = env.open(&db, &hexkey());
        check_rows(&conn, ROWS);
        assert_eq!(
            int(&conn, "SELECT count(*) FROM t WHERE v LIKE '% crashed'"),
            0,
            "{stack:?}"
        );
        assert_eq!(integrity(&conn), "ok");
    }
}

#[test]
fn a_colliding_wrong_key_does_not_drop_committed_wal_frames() {
    for stack in [Stack::Native, Stack::Mem, Stack::CksmNative] {
        let env = Env::new("kcv-wal", stack);
        let db = env.db("w.db");
        let (image, wal) = crashed_wal(&env, &db);
        restore(&env, &db, &image, "-wal", &wal);
        wrong_key_fails(&env, &db);
        // Every committed transaction is still there for the right key.
        let conn = env.open(&db, &hexkey());
        check_rows(&conn, ROWS);
        assert_eq!(
            int(&conn, "SELECT count(*) FROM t WHERE v LIKE '% committed'"),
            ROWS as i64,
            "{stack:?}"
        );
        assert_eq!(integrity(&conn), "ok");
    }
}
