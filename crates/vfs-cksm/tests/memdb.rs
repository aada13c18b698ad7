//! cksm over vfs-memdb: golden images, many connections and threads in WAL
//! mode, and tampering in memory.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

use common::*;
use rusqlite::Connection;
use vfs_cksm::Cksm;
use vfs_memdb::MemDb;

fn open(env: &Env, name: &str) -> Connection {
    let conn = Connection::open(format!("file:{name}?vfs={}", env.name)).unwrap();
    conn.busy_timeout(Duration::from_secs(30)).unwrap();
    conn
}

fn assert_trailers(image: &[u8]) {
    let p = page_size(image);
    assert_eq!(image[20], 8);
    for (i, page) in image.chunks(p).enumerate() {
        assert_eq!(
            page[p - 8..],
            reference_trailer(&page[..p - 8]),
            "page {}",
            i + 1
        );
    }
}

/// The rollback-mode golden images, loaded into memory as they are, open
/// and verify over memdb. (golden-65536.db is left out: `MemDb::load`
/// currently rejects 65536-byte pages, whose header field reads `00 01`.)
#[test]
fn golden_images_over_memdb() {
    let mem = MemDb::new();
    let env = Env::new("memdb-golden", Cksm::new(mem.clone()));
    for (file, items, pages) in [("golden-4096.db", 2571, 306), ("golden-512.db", 686, 484)] {
        let image = std::fs::read(data(file)).unwrap();
        let name = format!("/{file}");
        mem.load(&name, &image).unwrap();
        let conn = open(&env, &name);
        assert_eq!(text(&conn, "PRAGMA checksum_verification"), "1");
        assert_eq!(int(&conn, "SELECT count(*) FROM item"), items);
        assert_eq!(int(&conn, "PRAGMA page_count"), pages);
        assert_eq!(integrity(&conn), "ok");
        drop(conn);
        assert_eq!(mem.export(&name).unwrap(), image);
    }
}

/// One writer moving money between accounts and three readers checking the
/// total, on separate threads and connections of one memdb database in WAL
/// mode; then every page in memory carries its reference trailer.
#[test]
fn wal_mode_across_threads_over_memdb() {
    let mem = MemDb::new();
    let env = Arc::new(Env::new("memdb-wal", Cksm::new(mem.clone())));
    let setup = open(&env, "/bank.db");
    setup
        .execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER, pad BLOB);
             WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 200)
             INSERT INTO acct SELECT i, 1000, zeroblob(300) FROM c;",
        )
        .unwrap();
    let start = Arc::new(Barrier::new(4));
    let mut handles = Vec::new();
    {
        let (env, start) = (env.clone(), start.clone());
        handles.push(thread::spawn(move || {
            let conn = open(&env, "/bank.db");
            start.wait();
            // A fixed pseudo-random walk (seeded LCG).
            let mut x: u64 = 42;
            for _ in 0..300 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let (a, b) = (((x >> 33) % 200 + 1) as i64, ((x >> 13) % 200 + 1) as i64);
                let tx = conn.unchecked_transaction().unwrap();
                tx.execute("UPDATE acct SET bal = bal - 7 WHERE id = ?1", [a])
                    .unwrap();
                tx.execute("UPDATE acct SET bal = bal + 7 WHERE id = ?1", [b])
                    .unwrap();
                tx.commit().unwrap();
            }
        }));
    }
    for _ in 0..3 {
        let (env, start) = (env.clone(), start.clone());
        handles.push(thread::spawn(move || {
            let conn = open(&env, "/bank.db");
            start.wait();
            for _ in 0..150 {
                assert_eq!(int(&conn, "SELECT sum(bal) FROM acct"), 200_000);
            }
        }));
    }
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(integrity(&setup), "ok");
    setup
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    drop(setup);
    let image = mem.export("/bank.db").unwrap();
    assert_trailers(&image);
}

/// A byte flipped in memory under the shim fails the read of that page.
#[test]
fn tampering_in_memory_is_ioerr_data() {
    let mem = MemDb::new();
    let env = Env::new("memdb-tamper", Cksm::new(mem.clone()));
    let conn = open(&env, "/t.db");
    conn.execute_batch(
        "PRAGMA page_size=1024; CREATE TABLE a(v); CREATE TABLE b(v);
         INSERT INTO a VALUES ('alpha'); INSERT INTO b VALUES ('beta');",
    )
    .unwrap();
    drop(conn);
    let mut image = mem.export("/t.db").unwrap();
    assert_trailers(&image);
    image[2 * 1024 + 500] ^= 0x20; // page 3: table b's root
    mem.load("/t2.db", &image).unwrap();
    let conn = open(&env, "/t2.db");
    assert_eq!(text(&conn, "SELECT v FROM a"), "alpha");
    assert_ioerr_data(conn.query_row("SELECT v FROM b", [], |r| r.get::<_, String>(0)));
}
