//! Rollback journals planted next to an encrypted database by someone who
//! can write the storage but has no key (issue #17, finding 1). Whatever
//! the journal holds, the next connection with the key refuses it or
//! treats it as torn: it never plays back content the key holder did not
//! write, on memdb and on disk, with crypto alone and over cksm.

mod common;

use common::*;
use rusqlite::Connection;

const ROWS: usize = 120;
const MAGIC: [u8; 8] = [0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
const SECTOR: usize = 512;
const ATTACKER: &str = "ATTACKER-ROW";

/// The victim: table `t` filled by [`fill`] (rollback mode, several pages,
/// `t`'s root on page 2). Returns its page count.
fn victim(env: &Env, db: &str) -> u32 {
    let conn = env.open(db, &hexkey());
    conn.execute_batch("PRAGMA journal_mode=DELETE").unwrap();
    fill(&conn, ROWS);
    let pages = int(&conn, "PRAGMA page_count") as u32;
    drop(conn);
    pages
}

/// What a connection with the key sees: the rows of `t`, or the SQLite
/// error code of the first failure.
fn outcome(env: &Env, db: &str) -> Result<Vec<String>, i32> {
    let conn = env.open(db, &hexkey());
    let mut stmt = conn
        .prepare("SELECT v FROM t ORDER BY i")
        .map_err(|e| extended_code::<()>(Err(e)))?;
    let rows = stmt
        .query_map([], |r| r.get::<_, String>(0))
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(|e| extended_code::<()>(Err(e)))?;
    Ok(rows)
}

/// The victim's rows are what the key holder last committed (`suffix`
/// appended to each), or the connection reports an error; never anything
/// else.
fn assert_untouched(env: &Env, db: &str, suffix: &str, case: &str) {
    match outcome(env, db) {
        Ok(rows) => {
            assert!(
                rows.iter().all(|r| !r.contains(ATTACKER)),
                "{:?} {case}: the planted journal put rows into the database",
                env.stack
            );
            assert_eq!(rows.len(), ROWS, "{:?} {case}", env.stack);
            for r in &rows {
                assert!(
                    r.starts_with("PLAINTEXT-MARKER-7f3a ") && r.ends_with(suffix),
                    "{:?} {case}: row {r:?} is not one the key holder wrote last",
                    env.stack
                );
            }
            let conn = env.open(db, &hexkey());
            assert_eq!(integrity(&conn), "ok", "{:?} {case}", env.stack);
        }
        Err(code) => {
            // Refused: acceptable, as long as it says why.
            let message = vfs_core::last_error()
                .map(|e| e.message)
                .unwrap_or_default();
            assert!(!message.is_empty(), "{:?} {case}: error {code}", env.stack);
        }
    }
}

/// SQLite's sampled checksum of a journal record (pager.c, `pager_cksum`).
fn record_checksum(init: u32, page: &[u8]) -> u32 {
    let mut sum = init;
    let mut i = page.len() as isize - 200;
    while i > 0 {
        sum = sum.wrapping_add(u32::from(page[i as usize]));
        i -= 200;
    }
    sum
}

/// A hot journal as SQLite lays it out: one header (its page-size field
/// `page_size_field`), then `pgno ‖ page ‖ checksum` records.
fn journal(page_size_field: u32, db_pages: u32, records: &[(u32, &[u8])]) -> Vec<u8> {
    let init = 0x5eed_1234u32;
    let mut j = Vec::new();
    j.extend_from_slice(&MAGIC);
    j.extend_from_slice(&(records.len() as u32).to_be_bytes());
    j.extend_from_slice(&init.to_be_bytes());
    j.extend_from_slice(&db_pages.to_be_bytes());
    j.extend_from_slice(&(SECTOR as u32).to_be_bytes());
    j.extend_from_slice(&page_size_field.to_be_bytes());
    j.resize(SECTOR, 0);
    for (pgno, page) in records {
        j.extend_from_slice(&pgno.to_be_bytes());
        j.extend_from_slice(page);
        j.extend_from_slice(&record_checksum(init, page).to_be_bytes());
    }
    j
}

/// Page 2 of a plaintext database with the victim's schema, the attacker's
/// rows and the victim's reserve: what the attacker wants the victim to
/// read as the root of `t`.
fn attacker_page(reserve: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("attacker.db");
    let conn = Connection::open(&plain).unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS t(i INTEGER PRIMARY KEY, v TEXT);
         INSERT INTO t(v) VALUES ('ATTACKER-ROW one'), ('ATTACKER-ROW two');",
    )
    .unwrap();
    let shaped = dir.path().join("shaped.db");
    conn.execute(
        &format!("VACUUM INTO 'file:{}?reserve={reserve}'", shaped.display()),
        [],
    )
    .unwrap();
    let raw = std::fs::read(&shaped).unwrap();
    assert_eq!(page_size(&raw), 4096);
    assert_eq!(usize::from(raw[20]), reserve);
    raw[4096..8192].to_vec()
}

/// Copies of the database and of its hot journal taken in the middle of a
/// transaction that spilled changed pages (`suffix` appended to every row)
/// to the database file: what a crash there leaves. The transaction is then
/// committed or rolled back.
fn hot_journal(env: &Env, db: &str, suffix: &str, commit: bool) -> (Vec<u8>, Vec<u8>) {
    let conn = env.open(db, &hexkey());
    conn.execute_batch(&format!(
        "PRAGMA cache_size=2; BEGIN; UPDATE t SET v = v || '{suffix}';"
    ))
    .unwrap();
    let journal = env.raw(db, "-journal").expect("a journal");
    assert_eq!(journal[..8], MAGIC, "the journal was synced (hot)");
    let image = raw_db(env, db);
    conn.execute_batch(if commit { "COMMIT" } else { "ROLLBACK" })
        .unwrap();
    (image, journal)
}

/// The database file's bytes as stored (in memory, without export's
/// locking, which the open writer holds).
fn raw_db(env: &Env, db: &str) -> Vec<u8> {
    if env.stack.on_disk() {
        std::fs::read(db).unwrap()
    } else {
        env.mem.as_ref().unwrap().file_bytes(db).unwrap()
    }
}

fn plant_journal(env: &Env, db: &str, bytes: &[u8]) {
    env.plant(&format!("{db}-journal"), bytes);
}

#[test]
fn page_size_zero_with_a_plaintext_record() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hj-zero", stack);
        let db = env.db("v.db");
        let pages = victim(&env, &db);
        let page = attacker_page(stack.reserve());
        plant_journal(&env, &db, &journal(0, pages, &[(2, &page)]));
        assert_untouched(&env, &db, "", "page size 0, plaintext record");
    }
}

#[test]
fn the_right_page_size_with_a_plaintext_record() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hj-plain", stack);
        let db = env.db("v.db");
        let pages = victim(&env, &db);
        let page = attacker_page(stack.reserve());
        plant_journal(&env, &db, &journal(4096, pages, &[(2, &page)]));
        assert_untouched(&env, &db, "", "page size 4096, plaintext record");
    }
}

#[test]
fn an_unreadable_page_size() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hj-odd", stack);
        let db = env.db("v.db");
        let pages = victim(&env, &db);
        let page = attacker_page(stack.reserve());
        for field in [1u32, 4095, 1 << 17, u32::MAX] {
            plant_journal(&env, &db, &journal(field, pages, &[(2, &page)]));
            assert_untouched(&env, &db, "", &format!("page size field {field}"));
        }
    }
}

/// SQLite truncates (or extends) the database to the size a hot journal's
/// header names before it reads a record: a planted header must not get
/// that far.
#[test]
fn a_planted_header_neither_truncates_nor_extends_the_database() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hj-size", stack);
        let db = env.db("v.db");
        let pages = victim(&env, &db);
        let size = env.raw(&db, "").unwrap().len();
        for claimed in [1u32, pages / 2, 1 << 16] {
            for page_size_field in [0u32, 4096] {
                plant_journal(&env, &db, &journal(page_size_field, claimed, &[]));
                let conn = env.open(&db, &hexkey());
                check_rows(&conn, ROWS);
                assert_eq!(integrity(&conn), "ok", "{stack:?} claimed {claimed}");
                drop(conn);
                assert_eq!(
                    env.raw(&db, "").unwrap().len(),
                    size,
                    "{stack:?}: the database was resized to {claimed} pages"
                );
            }
        }
    }
}

#[test]
fn records_from_another_database_under_the_same_key() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hj-other", stack);
        let db = env.db("v.db");
        victim(&env, &db);
        let other = env.db("other.db");
        victim(&env, &other);
        let (_, journal) = hot_journal(&env, &other, " ATTACKER-ROW", false);
        plant_journal(&env, &db, &journal);
        assert_untouched(&env, &db, "", "another database's journal");
    }
}

#[test]
fn a_stale_journal_of_the_same_database() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hj-stale", stack);
        let db = env.db("v.db");
        victim(&env, &db);
        // The journal of a transaction that then committed, planted after
        // two more transactions: playing it back would put pre-T1 images
        // of some pages next to post-T3 images of others.
        let (_, stale) = hot_journal(&env, &db, " T1", true);
        let conn = env.open(&db, &hexkey());
        conn.execute_batch("UPDATE t SET v = v || ' T2'").unwrap();
        conn.execute_batch("UPDATE t SET v = v || ' T3'").unwrap();
        drop(conn);
        plant_journal(&env, &db, &stale);
        assert_untouched(&env, &db, " T1 T2 T3", "stale journal");
        assert!(
            !env.exists(&format!("{db}-journal")),
            "{stack:?}: the stale journal was treated as torn and removed"
        );
    }
}

/// The legitimate case next to the hostile ones: a crash copy of the
/// database with its hot journal rolls back to the last commit.
#[test]
fn a_genuine_hot_journal_still_rolls_back() {
    for stack in Stack::BOTH_ORDERS {
        let env = Env::new("hj-genuine", stack);
        let db = env.db("v.db");
        victim(&env, &db);
        let (image, journal) = hot_journal(&env, &db, " crashed", false);
        // The crash copy: the database as the crash left it, its journal.
        if stack.on_disk() {
            std::fs::write(&db, &image).unwrap();
        } else {
            env.mem.as_ref().unwrap().load_raw(&db, &image).unwrap();
        }
        plant_journal(&env, &db, &journal);
        let conn = env.open(&db, &hexkey());
        check_rows(&conn, ROWS);
        assert_eq!(
            int(&conn, "SELECT count(*) FROM t WHERE v LIKE '% crashed'"),
            0,
            "{stack:?}"
        );
        assert_eq!(integrity(&conn), "ok");
        drop(conn);
        assert!(!env.exists(&format!("{db}-journal")), "{stack:?}");
    }
}
