//! `-wal` files planted next to an encrypted database by someone without
//! the key (issue #17, finding 1), and frames that stop authenticating
//! while a writer re-reads them (finding 4). A WAL frame that does not
//! authenticate is never content: during recovery it ends the log (SQLite
//! ignores it and everything after it), anywhere else it is an error.

mod common;

use common::*;
use rusqlite::Connection;
use vfs_core::codes::SQLITE_IOERR_DATA;

const ROWS: usize = 120;
const ATTACKER: &str = "ATTACKER-ROW";

/// A WAL-mode victim, checkpointed, with no WAL left.
fn victim(env: &Env, db: &str) {
    let conn = env.open(db, &hexkey());
    assert_eq!(text(&conn, "PRAGMA journal_mode=WAL"), "wal");
    fill(&conn, ROWS);
    drop(conn);
    assert!(!env.exists(&format!("{db}-wal")) || wal_is_empty(env, db));
}

fn wal_is_empty(env: &Env, db: &str) -> bool {
    env.raw(db, "-wal").is_none_or(|w| w.is_empty())
}

/// What a connection with the key sees: the rows of `t` or an error code.
fn outcome(env: &Env, db: &str) -> Result<Vec<String>, i32> {
    let conn = env.open(db, &hexkey());
    let mut stmt = conn
        .prepare("SELECT v FROM t ORDER BY i")
        .map_err(|e| extended_code::<()>(Err(e)))?;
    stmt.query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| extended_code::<()>(Err(e)))
}

/// Every row is one the key holder committed (each ends with one of
/// `suffixes`), or the connection reports an error.
fn assert_only_written(env: &Env, db: &str, suffixes: &[&str], case: &str) {
    match outcome(env, db) {
        Ok(rows) => {
            assert_eq!(rows.len(), ROWS, "{:?} {case}", env.stack);
            for r in &rows {
                assert!(!r.contains(ATTACKER), "{:?} {case}: {r:?}", env.stack);
                assert!(
                    r.starts_with("PLAINTEXT-MARKER-7f3a ")
                        && suffixes.iter().any(|s| r.ends_with(s)),
                    "{:?} {case}: row {r:?} was never written by the key holder",
                    env.stack
                );
            }
        }
        Err(code) => {
            let message = vfs_core::last_error()
                .map(|e| e.message)
                .unwrap_or_default();
            assert!(!message.is_empty(), "{:?} {case}: error {code}", env.stack);
        }
    }
}

/// The un-checkpointed WAL of a plaintext database with the victim's
/// schema, page size and reserve, whose committed frames hold the
/// attacker's rows (valid SQLite checksums and salts).
fn attacker_wal(reserve: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.db");
    let conn = Connection::open(&plain).unwrap();
    conn.execute_batch("CREATE TABLE t(i INTEGER PRIMARY KEY, v TEXT);")
        .unwrap();
    let shaped = dir.path().join("shaped.db");
    conn.execute(
        &format!("VACUUM INTO 'file:{}?reserve={reserve}'", shaped.display()),
        [],
    )
    .unwrap();
    drop(conn);
    let conn = Connection::open(&shaped).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;
         WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 120)
         INSERT INTO t(v) SELECT 'ATTACKER-ROW ' || x FROM n;",
    )
    .unwrap();
    // Copied while the connection is open (it checkpoints on close).
    let wal = std::fs::read(format!("{}-wal", shaped.display())).unwrap();
    assert!(wal.len() >= 32 + 24 + 4096, "a committed frame");
    wal
}

/// Copies of `db` and of its WAL holding committed frames (each row gets
/// `suffix`), taken while the writer keeps the WAL from being
/// checkpointed: what a crash then leaves.
fn committed_wal(env: &Env, db: &str, suffix: &str) -> (Vec<u8>, Vec<u8>) {
    let conn = env.open(db, &hexkey());
    conn.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
    conn.execute_batch(&format!("UPDATE t SET v = v || '{suffix}'"))
        .unwrap();
    let wal = env.raw(db, "-wal").expect("a WAL");
    assert!(wal.len() > 32 + 24 + 4096, "{:?}", env.stack);
    let image = if env.stack.on_disk() {
        std::fs::read(db).unwrap()
    } else {
        env.mem.as_ref().unwrap().file_bytes(db).unwrap()
    };
    drop(conn);
    (image, wal)
}

fn plant_wal(env: &Env, db: &str, bytes: &[u8]) {
    env.plant(&format!("{db}-wal"), bytes);
}

#[test]
fn plaintext_frames_with_valid_checksums() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hw-plain", stack);
        let db = env.db("v.db");
        victim(&env, &db);
        plant_wal(&env, &db, &attacker_wal(stack.reserve()));
        assert_only_written(&env, &db, &[""], "plaintext WAL");
    }
}

#[test]
fn a_wal_header_with_page_size_zero() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hw-zero", stack);
        let db = env.db("v.db");
        victim(&env, &db);
        let mut wal = attacker_wal(stack.reserve());
        wal[8..12].fill(0);
        plant_wal(&env, &db, &wal);
        assert_only_written(&env, &db, &[""], "WAL page size 0");
    }
}

#[test]
fn frames_from_another_database_under_the_same_key() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hw-other", stack);
        let db = env.db("v.db");
        victim(&env, &db);
        let other = env.db("other.db");
        victim(&env, &other);
        let (_, wal) = committed_wal(&env, &other, " ATTACKER-ROW");
        plant_wal(&env, &db, &wal);
        assert_only_written(&env, &db, &[""], "another database's WAL");
    }
}

/// SQLite's WAL is authoritative over the database file and nothing in
/// the database records which WAL generations it has absorbed, so an old
/// WAL of the same database planted after later checkpoints is replayed
/// (documented in docs/formats.md, "Threat model"). What it can bring back
/// is only pages the key holder wrote.
#[test]
fn a_stale_wal_of_the_same_database_brings_back_only_written_pages() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hw-stale", stack);
        let db = env.db("v.db");
        victim(&env, &db);
        let (_, stale) = committed_wal(&env, &db, " T1");
        let conn = env.open(&db, &hexkey());
        conn.execute_batch("UPDATE t SET v = v || ' T2'").unwrap();
        drop(conn);
        plant_wal(&env, &db, &stale);
        assert_only_written(&env, &db, &[" T1", " T1 T2"], "stale WAL");
    }
}

/// A legitimate crash copy of a WAL with committed frames still recovers.
#[test]
fn a_genuine_wal_still_recovers() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hw-genuine", stack);
        let db = env.db("v.db");
        victim(&env, &db);
        let (image, wal) = committed_wal(&env, &db, " T1");
        // The crash copy: the database before any checkpoint, its WAL.
        if stack.on_disk() {
            std::fs::write(&db, &image).unwrap();
        } else {
            env.mem.as_ref().unwrap().load_raw(&db, &image).unwrap();
        }
        plant_wal(&env, &db, &wal);
        assert_only_written(&env, &db, &[" T1"], "genuine WAL");
        let conn = env.open(&db, &hexkey());
        assert_eq!(integrity(&conn), "ok");
    }
}

/// Finding 4: a transaction that overwrites one of its own frames makes
/// SQLite re-read every frame it wrote since (walRewriteChecksums) and
/// checksum it again. A frame damaged meanwhile must fail the commit, not
/// be checksummed as zeros (which recovery would later accept as a page of
/// zeros).
#[test]
fn a_frame_damaged_before_its_checksums_are_rewritten_fails_the_commit() {
    use std::io::{Seek, SeekFrom, Write};
    for stack in [Stack::Native, Stack::CksmNative] {
        let env = Env::new("hw-rewrite", stack);
        let db = env.db("r.db");
        let conn = env.open(&db, &hexkey());
        assert_eq!(text(&conn, "PRAGMA journal_mode=WAL"), "wal");
        conn.execute_batch("PRAGMA wal_autocheckpoint=0").unwrap();
        // One page per table: u0 .. u9.
        for k in 0..10 {
            conn.execute_batch(&format!(
                "CREATE TABLE u{k}(v TEXT); INSERT INTO u{k} VALUES ('row of u{k}');"
            ))
            .unwrap();
        }
        let roots: Vec<(String, u32)> = conn
            .prepare("SELECT name, rootpage FROM sqlite_schema WHERE name LIKE 'u%'")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let wal_path = format!("{db}-wal");
        let committed = std::fs::metadata(&wal_path).unwrap().len();
        // An open transaction whose pages spill to the WAL as frames.
        conn.execute_batch("PRAGMA cache_size=2; BEGIN;").unwrap();
        for k in 0..10 {
            conn.execute_batch(&format!("UPDATE u{k} SET v = v || ' changed'"))
                .unwrap();
        }
        let wal = std::fs::read(&wal_path).unwrap();
        let frame = 24 + 4096;
        let frames: Vec<(u64, u32)> = (committed..wal.len() as u64)
            .step_by(frame)
            .filter(|at| *at as usize + frame <= wal.len())
            .map(|at| {
                let a = at as usize;
                (at, u32::from_be_bytes(wal[a..a + 4].try_into().unwrap()))
            })
            .collect();
        assert!(frames.len() >= 3, "{stack:?}: the transaction spilled");
        let (first_at, first_pgno) = frames[0];
        let (last_at, last_pgno) = *frames.last().unwrap();
        assert!(first_at < last_at && first_pgno != last_pgno);
        let highest = roots.iter().map(|(_, p)| *p).max().unwrap();
        assert_ne!(
            last_pgno, highest,
            "{stack:?}: the damaged frame stays clean"
        );
        // Damage the last frame's page, then dirty the first frame's page
        // again so the commit overwrites that frame in place.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&wal_path)
            .unwrap();
        f.seek(SeekFrom::Start(last_at + 24 + 100)).unwrap();
        f.write_all(b"damage").unwrap();
        drop(f);
        // At commit SQLite appends the highest dirty page (it carries the
        // commit mark) and overwrites the others in place when they already
        // have a frame in this transaction: dirty the first frame's page and
        // the highest page.
        let first_table = &roots.iter().find(|(_, p)| *p == first_pgno).unwrap().0;
        let last_table = &roots.iter().max_by_key(|(_, p)| *p).unwrap().0;
        assert_ne!(first_table, last_table);
        conn.execute_batch(&format!(
            "UPDATE {first_table} SET v = v || ' again'; UPDATE {last_table} SET v = v || ' again';"
        ))
        .unwrap();
        let r = conn.execute_batch("COMMIT");
        assert_eq!(extended_code(r), SQLITE_IOERR_DATA, "{stack:?}");
        let _ = conn.execute_batch("ROLLBACK");
        drop(conn);
        // Nothing of the failed transaction, nothing made of zeros.
        let conn = env.open(&db, &hexkey());
        for k in 0..10 {
            assert_eq!(
                text(&conn, &format!("SELECT v FROM u{k}")),
                format!("row of u{k}"),
                "{stack:?}"
            );
        }
        assert_eq!(integrity(&conn), "ok");
    }
}
