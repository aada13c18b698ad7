//! The library crates against the LOWEST `libsqlite3-sys` of their declared
//! range: `cargo xtask deps-floor` copies this file into a generated crate
//! under `target/deps-floor/`, pins `libsqlite3-sys` with
//! `cargo update --precise`, and runs it twice, on the system's SQLite and
//! on the one that version bundles (feature `bundled`).
//!
//! It needs no Rust SQLite binding (rusqlite would pin a newer
//! `libsqlite3-sys`): SQL runs through `vfs_core::db::Database`. Every
//! library crate is linked in; the checks exercise the stacks users build.
//! Ends with `N passed, M failed`.

#![forbid(unsafe_code)]

use vfs_cksm::Cksm;
use vfs_core::db::{Database, OpenMode};
use vfs_core::hooks::SqlValue;
use vfs_core::{Native, Result, Vfs, register};
use vfs_crypto::{Crypto, Key};
use vfs_embed::{Embed, FileSet};
use vfs_fault::Fault;
use vfs_memdb::MemDb;
use vfs_mvcc::Mvcc;

const ROWS: i64 = 500;

/// Creates a table (in WAL mode if `wal`), fills it, reads it back from a second
/// connection and checks `PRAGMA integrity_check`.
fn workload(uri: &str, wal: bool) -> Result<String> {
    let db = Database::open(uri, OpenMode::ReadWriteCreate)?;
    let mode = db.query_text(
        if wal {
            "PRAGMA journal_mode=WAL"
        } else {
            "PRAGMA journal_mode"
        },
        &[],
    )?;
    db.execute_batch(
        "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT NOT NULL);
         CREATE INDEX t_v ON t(v);",
    )?;
    db.execute_batch("BEGIN")?;
    for i in 0..ROWS {
        db.execute(
            "INSERT INTO t(v) VALUES (?1)",
            &[&format!("floor row {i:04}")],
        )?;
    }
    db.execute_batch("COMMIT")?;
    let other = Database::open(uri, OpenMode::ReadWrite)?;
    let n = other.query_i64("SELECT count(*) FROM t", &[])?;
    let check = other.query_text("PRAGMA integrity_check", &[])?;
    if n != Some(ROWS) || check.as_deref() != Some("ok") {
        return Err(vfs_core::Error::new(
            vfs_core::codes::SQLITE_ERROR,
            format!("{n:?} rows, integrity {check:?}"),
        ));
    }
    Ok(format!(
        "journal_mode {}, {ROWS} rows, integrity ok",
        mode.unwrap_or_default()
    ))
}

struct Tally(usize, usize);

impl Tally {
    fn check(&mut self, what: &str, r: Result<String>) {
        match r {
            Ok(s) => {
                self.0 += 1;
                println!("ok    {what}: {s}");
            }
            Err(e) => {
                self.1 += 1;
                println!("FAIL  {what}: {e}");
            }
        }
    }
}

fn on<V: Vfs>(t: &mut Tally, name: &str, vfs: V, uri: &str, wal: bool) {
    let r = register(name, vfs, false).and_then(|reg| {
        let out = workload(uri, wal);
        reg.unregister().map_err(|(_, e)| e)?;
        out
    });
    t.check(name, r);
}

fn main() -> std::process::ExitCode {
    let mut t = Tally(0, 0);
    let version = Database::open("file:floor?mode=memory", OpenMode::ReadWriteCreate)
        .and_then(|db| db.query_text("SELECT sqlite_version()", &[]));
    println!(
        "libsqlite3-sys {}, SQLite {}",
        env!("FLOOR_LIBSQLITE3_SYS"),
        version.as_ref().map_or("?", |v| v.as_deref().unwrap_or("?"))
    );
    let dir = std::env::temp_dir().join(format!("vfs-deps-floor-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        println!("FAIL  temp dir: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let disk = |f: &str| format!("file:{}", dir.join(f).display());

    on(&mut t, "floor-memdb", MemDb::new(), "file:/m.db?vfs=floor-memdb", true);
    on(&mut t, "floor-mvcc", Mvcc::new(), "file:/v.db?vfs=floor-mvcc", false);
    let mem = MemDb::new();
    on(
        &mut t,
        "floor-crypto-cksm-memdb",
        Crypto::new(Cksm::new(mem.clone()), Key::generate()),
        "file:/c.db?vfs=floor-crypto-cksm-memdb",
        true,
    );
    t.check(
        "crypto stores no plaintext",
        match mem.file_bytes("/c.db") {
            Some(b) if !b.windows(9).any(|w| w == b"floor row") && !b.starts_with(b"SQLite") => {
                Ok(format!("{} bytes of ciphertext", b.len()))
            }
            other => Err(vfs_core::Error::new(
                1,
                format!("stored: {:?}", other.map(|b| b.len())),
            )),
        },
    );
    on(
        &mut t,
        "floor-cksm-native",
        Cksm::new(Native::new().expect("native VFS")),
        &format!("{}?vfs=floor-cksm-native", disk("k.db")),
        true,
    );
    on(
        &mut t,
        "floor-fault-native",
        Fault::new(Native::new().expect("native VFS")),
        &format!("{}?vfs=floor-fault-native", disk("f.db")),
        true,
    );

    // The helpers: cksm's enable and crypto's copy, on their own connections.
    let helpers = (|| -> Result<String> {
        let plain = disk("plain.db");
        workload(&plain, true)?;
        let cksm = register("floor-cksm", Cksm::new(Native::new()?), false)?;
        vfs_cksm::enable(&format!("{plain}?vfs=floor-cksm"))?;
        let key = Key::generate();
        let crypto = register("floor-crypto", Crypto::keyless(Native::new()?), false)?;
        let enc = format!(
            "{}?vfs=floor-crypto&hexkey={}",
            disk("enc.db"),
            key.to_hex().as_str()
        );
        vfs_crypto::encrypt_database(&format!("{plain}?vfs=floor-cksm"), &enc)?;
        let db = Database::open(&enc, OpenMode::ReadOnly)?;
        let n = db.query_value("SELECT count(*) FROM t", &[])?;
        drop(db);
        let wrong = format!(
            "{}?vfs=floor-crypto&hexkey={}",
            disk("enc.db"),
            Key::generate().to_hex().as_str()
        );
        let refused = Database::open(&wrong, OpenMode::ReadOnly)
            .and_then(|db| db.query_value("SELECT count(*) FROM t", &[]));
        crypto.unregister().map_err(|(_, e)| e)?;
        cksm.unregister().map_err(|(_, e)| e)?;
        match (n, refused) {
            (Some(SqlValue::Integer(ROWS)), Err(e)) if e.code() == Some(26) => Ok(format!(
                "enable + encrypt_database: {ROWS} rows; a wrong key: {e}"
            )),
            (n, r) => Err(vfs_core::Error::new(
                1,
                format!("copy has {n:?} rows; wrong key gave {r:?}"),
            )),
        }
    })();
    t.check("vfs_cksm::enable, vfs_crypto::encrypt_database", helpers);

    // A read-only image through vfs-embed.
    let embed = (|| -> Result<String> {
        let plain = disk("e.db");
        workload(&plain, true)?;
        let db = Database::open(&plain, OpenMode::ReadWrite)?;
        db.execute_batch("PRAGMA journal_mode=DELETE")?;
        drop(db);
        let bytes = std::fs::read(dir.join("e.db")).map_err(vfs_core::Error::from)?;
        let handle = Embed::register(FileSet::new().with("e.db", bytes))?;
        let db = Database::open(&handle.uri("e.db"), OpenMode::ReadOnly)?;
        let n = db.query_i64("SELECT count(*) FROM t", &[])?;
        drop(db);
        handle.close().map_err(|(_, e)| e)?;
        Ok(format!("{n:?} rows read from an embedded image"))
    })();
    t.check("vfs-embed", embed);

    let _ = std::fs::remove_dir_all(&dir);
    println!("{} passed, {} failed", t.0, t.1);
    if t.1 == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
