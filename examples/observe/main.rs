//! Observe what SQLite does to its storage.
//!
//! Registers the native (disk) VFS wrapped in `vfs_observe::Wrap` with a
//! `StatsRecorder`, runs a small WAL workload through rusqlite, prints a few
//! rows, then the I/O statistics table: how many reads, writes and syncs,
//! how many bytes, how long they took, per operation and per file kind.
//!
//! Run: `cargo run -p examples --bin observe`

use std::error::Error;
use std::sync::Arc;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags, params};
use vfs_core::{Native, Op};
use vfs_observe::{LatencyMode, Recorder, StatsRecorder, register_observed};

const VFS: &str = "observed-native";

fn main() -> Result<(), Box<dyn Error>> {
    // Passing `None` instead registers the bare native VFS: no wrapper, no
    // cost. Here we want the numbers.
    // A short demo: time every call (the default samples 1 in 64 of the
    // frequent cheap ones to keep the overhead low).
    let stats = Arc::new(StatsRecorder::new().with_latency(LatencyMode::Every));
    let recorder: Arc<dyn Recorder> = stats.clone();
    let registration = register_observed(VFS, Native::new()?, Some(recorder), false)?;

    let dir = std::env::temp_dir().join(format!("vfs-observe-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("orders.db");
    let result = run(&path.display().to_string(), &stats);
    let _ = std::fs::remove_dir_all(&dir);
    result?;

    registration
        .unregister()
        .map_err(|(_, e)| Box::new(e) as Box<dyn Error>)?;
    Ok(())
}

fn run(path: &str, stats: &StatsRecorder) -> Result<(), Box<dyn Error>> {
    let started = Instant::now();
    let conn = Connection::open_with_flags(
        format!("file:{path}?vfs={VFS}"),
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    println!("journal_mode = {mode}");
    conn.execute_batch(
        "PRAGMA synchronous=NORMAL;
         CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount INTEGER NOT NULL);
         CREATE INDEX orders_by_customer ON orders(customer);",
    )?;

    // A few hundred inserts, in ten transactions.
    let customers = ["ada", "grace", "linus", "margaret", "ken"];
    for batch in 0..10 {
        let tx = conn.unchecked_transaction()?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO orders(customer, amount) VALUES (?1, ?2)")?;
            for i in 0..30 {
                let n = batch * 30 + i;
                insert.execute(params![
                    customers[n % customers.len()],
                    ((n * 37) % 500 + 1) as i64
                ])?;
            }
        }
        tx.commit()?;
    }

    // A second connection reads through the same wrapped VFS (WAL: it sees
    // every committed transaction).
    let reader = Connection::open_with_flags(
        format!("file:{path}?vfs={VFS}"),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )?;
    let mut totals = reader.prepare(
        "SELECT customer, count(*), sum(amount) FROM orders GROUP BY customer ORDER BY customer",
    )?;
    println!("\n{:<10} {:>6} {:>8}", "customer", "orders", "total");
    let rows = totals.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (customer, orders, total) = row?;
        println!("{customer:<10} {orders:>6} {total:>8}");
    }
    drop(totals);
    let big: i64 = reader.query_row("SELECT count(*) FROM orders WHERE amount > 400", [], |r| {
        r.get(0)
    })?;
    println!("orders above 400: {big}");
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    println!("integrity_check: {check}");
    drop(reader);
    drop(conn);
    let elapsed = started.elapsed();

    let snapshot = stats.snapshot();
    println!(
        "\nI/O through {VFS} ({} operations in {elapsed:.1?}):\n",
        snapshot.total_ops()
    );
    println!("{snapshot}");
    let sync = snapshot.op(Op::Sync);
    println!(
        "syncs took {:.1?} in total ({:.1?} at the median)",
        sync.latency.total, sync.latency.p50
    );
    Ok(())
}
