//! SQLite on an object store, with two writers that share nothing but the
//! store: `cargo run -p examples --bin object`.
//!
//! By default the store is in memory. With `OBJECT_STORE_BUCKET` set, it is
//! that S3 bucket, configured from the usual `AWS_*` environment variables
//! (`AWS_ENDPOINT` and `AWS_ALLOW_HTTP=true` for MinIO or moto).

use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};
use vfs_object::object_store::{ObjectStore, aws::AmazonS3Builder, memory::InMemory};
use vfs_object::{ObjectOptions, ObjectVfs};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store: Arc<dyn ObjectStore> = match std::env::var("OBJECT_STORE_BUCKET") {
        Ok(bucket) => Arc::new(
            AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .build()?,
        ),
        Err(_) => Arc::new(InMemory::new()),
    };
    println!("store: {store}");
    // Two independent VFS instances on one store behave like two machines:
    // separate caches, separate locks, only the store's conditional create
    // between them.
    let options = ObjectOptions {
        poll: Duration::from_millis(200),
        ..ObjectOptions::default()
    };
    let a = ObjectVfs::new(store.clone(), "examples", options.clone())?;
    let b = ObjectVfs::new(store, "examples", options)?;
    let _ra = vfs_core::register("object-a", a.clone(), false)?;
    let _rb = vfs_core::register("object-b", b.clone(), false)?;

    let ca = Connection::open("file:/bank.db?vfs=object-a")?;
    ca.execute_batch(
        "CREATE TABLE IF NOT EXISTS acct(id INTEGER PRIMARY KEY, bal INTEGER);
         INSERT OR IGNORE INTO acct VALUES (1, 100), (2, 100);",
    )?;
    // `poll=0`: look for other writers' commits at every transaction.
    let cb = Connection::open("file:/bank.db?vfs=object-b&poll=0")?;

    // Both start a transfer from the same state; the first commit wins.
    cb.execute_batch("BEGIN; UPDATE acct SET bal = bal - 10 WHERE id = 1;")?;
    cb.execute("UPDATE acct SET bal = bal + 10 WHERE id = 2", [])?;
    ca.execute_batch(
        "BEGIN; UPDATE acct SET bal = bal - 5 WHERE id = 2;
         UPDATE acct SET bal = bal + 5 WHERE id = 1; COMMIT;",
    )?;
    match cb.execute_batch("COMMIT") {
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == ErrorCode::DatabaseBusy => {
            println!(
                "b lost the race (extended code {}): rolled back, nothing stored; retrying",
                e.extended_code
            );
            cb.execute_batch(
                "BEGIN; UPDATE acct SET bal = bal - 10 WHERE id = 1;
                 UPDATE acct SET bal = bal + 10 WHERE id = 2; COMMIT;",
            )?;
        }
        other => other?,
    }
    let balances: Vec<(i64, i64)> = cb
        .prepare("SELECT id, bal FROM acct ORDER BY id")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let lsn: String = cb.query_row("PRAGMA object_lsn", [], |r| r.get(0))?;
    println!("balances {balances:?} at LSN {lsn}");
    println!("requests of a: {}", a.request_stats());
    println!("requests of b: {}", b.request_stats());
    Ok(())
}
