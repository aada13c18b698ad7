//! A stack of VFS layers: encryption over page checksums over a base, in
//! memory and on disk, observed at every layer boundary.
//!
//! ```text
//! SQLite ─▶ Wrap ─▶ Crypto ─▶ Wrap ─▶ Cksm ─▶ Wrap ─▶ MemDb | Native
//!          "sql"             "crypto"         "cksm"
//! ```
//!
//! Each `Wrap` feeds a `StatsRecorder`, so the program shows what SQLite
//! asked for, what the encryption layer passed down, and what reached the
//! storage. It writes orders through plain rusqlite, prints query results,
//! the I/O of each layer, and then scans every byte stored for a marker the
//! rows contain: it is never there.
//!
//! Run: `cargo run -p examples --bin stack`

use std::error::Error;
use std::sync::Arc;

use rusqlite::{Connection, OpenFlags, params};
use vfs_cksm::Cksm;
use vfs_core::{FileKind, Native, Vfs, register};
use vfs_crypto::{Crypto, CryptoCodec, Key};
use vfs_memdb::MemDb;
use vfs_observe::{StatsRecorder, Wrap};

/// Every customer name contains it; it must never reach the storage.
const MARKER: &str = "Acme-Confidential";

/// The recorders at the three layer boundaries.
struct Probes {
    sql: Arc<StatsRecorder>,
    crypto: Arc<StatsRecorder>,
    cksm: Arc<StatsRecorder>,
}

/// `Wrap(Crypto(Wrap(Cksm(Wrap(base)))))`, written as plain nesting: each
/// layer learns from its base what the layers beneath it reserve, so
/// crypto's 48-byte slice lands before cksm's 8-byte trailer at the end of
/// every page (a reserve of 56) with no number to line up.
fn stack<B: Vfs>(base: B, key: Key) -> (impl Vfs, Probes, Arc<CryptoCodec>) {
    let probes = Probes {
        sql: Arc::new(StatsRecorder::new()),
        crypto: Arc::new(StatsRecorder::new()),
        cksm: Arc::new(StatsRecorder::new()),
    };
    let cksm = Cksm::new(Wrap::new(base, probes.cksm.clone()));
    let crypto = Crypto::new(Wrap::new(cksm, probes.crypto.clone()), key);
    let codec = crypto.codec().clone();
    (Wrap::new(crypto, probes.sql.clone()), probes, codec)
}

fn main() -> Result<(), Box<dyn Error>> {
    let key = Key::generate();

    // In memory.
    let mem = MemDb::new();
    let (vfs, probes, codec) = stack(mem.clone(), key.clone());
    let reg = register("stack-mem", vfs, false)?;
    println!("== crypto over cksm over memdb");
    work("file:/orders.db?vfs=stack-mem")?;
    report(&probes, &codec);
    let mut stored = Vec::new();
    for name in mem.list() {
        let image = mem.export(&name)?;
        println!(
            "stored {name}: {} bytes, first 16 bytes {} (not \"SQLite format 3\")",
            image.len(),
            hex(&image[..16])
        );
        stored.push((name.to_string(), image));
    }
    scan(&stored)?;
    reg.unregister().map_err(|(_, e)| e)?;

    // On disk.
    let dir = std::env::temp_dir().join(format!("vfs-stack-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = on_disk(&dir, key);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn on_disk(dir: &std::path::Path, key: Key) -> Result<(), Box<dyn Error>> {
    let (vfs, probes, codec) = stack(Native::new()?, key);
    let reg = register("stack-disk", vfs, false)?;
    let path = dir.join("orders.db");
    println!("\n== crypto over cksm over the disk ({})", path.display());
    let uri = format!("file:{}?vfs=stack-disk", path.display());
    // Keep a connection open so the WAL is still there to be scanned.
    let keep = work(&uri)?;
    report(&probes, &codec);
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let bytes = std::fs::read(entry.path())?;
        println!(
            "stored {}: {} bytes",
            entry.file_name().to_string_lossy(),
            bytes.len()
        );
        stored.push((entry.file_name().to_string_lossy().into_owned(), bytes));
    }
    scan(&stored)?;
    drop(keep);
    // A plain SQLite connection sees no database there.
    let plain = Connection::open(&path)?;
    match plain.query_row("SELECT count(*) FROM orders", [], |r| r.get::<_, i64>(0)) {
        Ok(n) => return Err(format!("plain SQLite read {n} rows").into()),
        Err(e) => println!("plain SQLite on the same file: {e}"),
    }
    drop(plain);
    reg.unregister().map_err(|(_, e)| e)?;
    Ok(())
}

/// Orders in WAL mode through rusqlite, read back by a second connection.
/// Returns the writer, still open.
fn work(uri: &str) -> Result<Connection, Box<dyn Error>> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(uri, flags)?;
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
    conn.execute_batch(
        "PRAGMA wal_autocheckpoint=0;
         CREATE TABLE orders(id INTEGER PRIMARY KEY, customer TEXT NOT NULL, amount INTEGER NOT NULL);
         CREATE INDEX orders_by_customer ON orders(customer);",
    )?;
    let customers = ["north", "south", "east", "west"];
    for batch in 0..8 {
        let tx = conn.unchecked_transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO orders(customer, amount) VALUES (?1 || ' ' || ?2, ?3)",
            )?;
            for i in 0..50 {
                let n = batch * 50 + i;
                insert.execute(params![
                    MARKER,
                    customers[n % customers.len()],
                    ((n * 37) % 500 + 1) as i64
                ])?;
            }
        }
        tx.commit()?;
    }
    // A rolled-back change leaves no trace either.
    conn.execute_batch("BEGIN; UPDATE orders SET amount = 0; ROLLBACK;")?;

    let reader = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
    )?;
    let mut totals = reader.prepare(
        "SELECT customer, count(*), sum(amount) FROM orders GROUP BY customer ORDER BY customer",
    )?;
    println!(
        "journal_mode = {mode}\n{:<26} {:>6} {:>8}",
        "customer", "orders", "total"
    );
    for row in totals.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
        ))
    })? {
        let (customer, orders, total) = row?;
        println!("{customer:<26} {orders:>6} {total:>8}");
    }
    drop(totals);
    for pragma in ["crypto_format", "checksum_format", "integrity_check"] {
        let v: String = reader.query_row(&format!("PRAGMA {pragma}"), [], |r| r.get(0))?;
        println!("PRAGMA {pragma}: {v}");
    }
    let wal: i64 = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1))?;
    println!("WAL frames before the checkpoint: {wal}");
    // New rows after the checkpoint stay in the WAL only.
    conn.execute(
        "INSERT INTO orders(customer, amount) VALUES (?1 || ' late', 1)",
        [MARKER],
    )?;
    Ok(conn)
}

/// What each layer did, per kind of file.
fn report(probes: &Probes, codec: &CryptoCodec) {
    println!(
        "\n{:<30} {:>7} {:>11} {:>7} {:>11} {:>6}",
        "layer boundary / file", "reads", "read", "writes", "written", "syncs"
    );
    for (name, rec) in [
        ("SQLite -> crypto", &probes.sql),
        ("crypto -> cksm", &probes.crypto),
        ("cksm -> storage", &probes.cksm),
    ] {
        let stats = rec.snapshot();
        println!("{name}");
        for kind in FileKind::ALL {
            let k = stats.kind(Some(kind));
            if k.ops == 0 {
                continue;
            }
            println!(
                "  {:<28} {:>7} {:>11} {:>7} {:>11} {:>6}",
                kind.name(),
                k.reads,
                bytes(k.read_bytes),
                k.writes,
                bytes(k.write_bytes),
                k.syncs
            );
        }
    }
    let c = codec.stats();
    println!(
        "crypto: {} page images encrypted, {} decrypted, {} failures, {} temp-file bytes\n",
        c.pages_encrypted,
        c.pages_decrypted,
        c.failures,
        bytes(c.temp_bytes)
    );
}

/// Fails if any stored byte sequence contains the marker.
fn scan(stored: &[(String, Vec<u8>)]) -> Result<(), Box<dyn Error>> {
    let total: usize = stored.iter().map(|(_, b)| b.len()).sum();
    for (name, bytes) in stored {
        if bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()) {
            return Err(format!("{name} contains the plaintext marker").into());
        }
    }
    println!(
        "scanned {total} stored bytes in {} files: {MARKER:?} appears nowhere",
        stored.len()
    );
    Ok(())
}

fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KiB", n as f64 / 1024.0),
        _ => format!("{:.1} MiB", n as f64 / 1_048_576.0),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
