//! Many threads query one embedded database at once.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use common::*;
use rusqlite::Connection;
use vfs_embed::{Embed, EmbedHandle, FileSet, Source};

const ROWS: u32 = 5_000;

/// `threads` threads, each with its own connection, run `rounds` mixed
/// queries starting together, and check every answer.
fn hammer(handle: &EmbedHandle, db: &str, threads: usize, rounds: u32) {
    let uri = handle.uri(db);
    let start = Arc::new(Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let uri = uri.clone();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                let conn = Connection::open(&uri).unwrap();
                start.wait();
                let mut point = conn
                    .prepare_cached("SELECT label, n FROM t WHERE id = ?1")
                    .unwrap();
                let mut range = conn
                    .prepare_cached(
                        "SELECT count(*), coalesce(sum(id), 0) FROM t WHERE n BETWEEN ?1 AND ?2",
                    )
                    .unwrap();
                // Seeded per thread: different threads read different pages.
                let mut x = 0x9E37_79B9u32.wrapping_mul(t as u32 + 1);
                for _ in 0..rounds {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    let id = x % ROWS + 1;
                    let (label, n): (String, i64) = point
                        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
                        .unwrap();
                    assert_eq!(label, format!("row-{id}"));
                    assert_eq!(n, i64::from(id * 7 % 1000));
                    let lo = i64::from(x % 900);
                    let hi = lo + 50;
                    let (count, ids): (i64, i64) = range
                        .query_row([lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))
                        .unwrap();
                    let expected: Vec<i64> = (1..=i64::from(ROWS))
                        .filter(|i| (lo..=hi).contains(&(i * 7 % 1000)))
                        .collect();
                    assert_eq!(count, expected.len() as i64);
                    assert_eq!(ids, expected.iter().sum::<i64>());
                }
                let total: i64 = conn
                    .query_row("SELECT sum(n) FROM t", [], |r| r.get(0))
                    .unwrap();
                assert_eq!(total, numbers_sum(ROWS));
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a reader thread failed");
    }
    assert_eq!(handle.open_files(), 0);
}

#[test]
fn many_threads_query_one_static_image() {
    let image: &'static [u8] = image(&numbers_sql(ROWS)).leak();
    let handle = Embed::register(image).unwrap();
    hammer(&handle, "main.db", 8, 400);
}

#[test]
fn many_threads_query_one_file_source() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shared.db");
    std::fs::write(&path, image(&numbers_sql(ROWS))).unwrap();
    let before = read(&path);
    let handle =
        Embed::register(FileSet::new().with("shared.db", Source::open(&path).unwrap())).unwrap();
    hammer(&handle, "shared.db", 6, 300);
    assert_eq!(read(&path), before);
}

/// A longer run for stress testing: `cargo test -p vfs-embed -- --ignored`.
#[test]
#[ignore]
fn stress_many_threads_long() {
    let handle = Embed::register(image(&numbers_sql(ROWS))).unwrap();
    hammer(&handle, "main.db", 16, 3_000);
}
