//! rusqlite, sqlx and diesel, each at its newest release, in one binary
//! with the workspace's crates and one SQLite (Cargo allows one package
//! linking `sqlite3` per graph, so this only builds if the library crates'
//! `libsqlite3-sys` range meets all three).
//!
//! Every driver runs the same workload on the same two stacks:
//!
//! * `crypto(cksm(memdb))`: a shared in-memory name, WAL mode, the key given
//!   at registration;
//! * `cksm(native)`: a file on disk, WAL mode.
//!
//! The workload writes rows in several transactions from a pool of
//! connections (sqlx: an async pool; diesel: an r2d2 pool; rusqlite: two
//! connections), reads them back from another connection, and checks the
//! count, a sum and `PRAGMA integrity_check`. Then the stored bytes: on the
//! encrypted stack no row text and no SQLite header appear in the database
//! or its WAL; on the checksum stack the row text is there (so the scan can
//! find it) and every page's cksumvfs trailer verifies.
//!
//! Run: `cargo xtask compat` (or `cargo run` in this directory). Ends with
//! `N passed, M failed`; exits non-zero on any failure.

#![forbid(unsafe_code)]

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use vfs_cksm::Cksm;
use vfs_core::{Native, register};
use vfs_crypto::{Crypto, Key};
use vfs_memdb::MemDb;

type Res<T> = Result<T, Box<dyn Error>>;

/// Written into every row; must never reach the encrypted stack's storage.
const MARKER: &str = "compat-plaintext-marker";
/// Rows per transaction, and transactions.
const BATCH: i64 = 50;
const BATCHES: i64 = 6;
const ROWS: i64 = BATCH * BATCHES;
/// The sum of `qty` over all rows (qty of row n is n % 97).
fn expected_sum() -> i64 {
    (0..ROWS).map(|n| n % 97).sum()
}

const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER NOT NULL)";
const INSERT: &str = "INSERT INTO items(name, qty) VALUES (?1, ?2)";
const BUSY: Duration = Duration::from_secs(10);

fn row(n: i64) -> (String, i64) {
    (format!("{MARKER} #{n}"), n % 97)
}

/// What a driver saw after its workload.
#[derive(Debug, PartialEq)]
struct Seen {
    count: i64,
    sum: i64,
    integrity: String,
    journal_mode: String,
}

impl Seen {
    fn expected() -> Seen {
        Seen {
            count: ROWS,
            sum: expected_sum(),
            integrity: "ok".to_owned(),
            journal_mode: "wal".to_owned(),
        }
    }
}

/// Where a stack keeps a database, and how to reach it.
enum Place {
    /// A shared memdb name on the encrypted stack.
    Memory { vfs: &'static str, name: String },
    /// A file on the checksum stack.
    Disk { vfs: &'static str, path: PathBuf },
}

impl Place {
    fn uri(&self) -> String {
        match self {
            Place::Memory { vfs, name } => format!("file:{name}?vfs={vfs}"),
            Place::Disk { vfs, path } => format!("file:{}?vfs={vfs}", path.display()),
        }
    }
    fn vfs(&self) -> &'static str {
        match self {
            Place::Memory { vfs, .. } | Place::Disk { vfs, .. } => vfs,
        }
    }
    /// The file name SQLite is given (sqlx takes the VFS separately).
    fn file(&self) -> String {
        match self {
            Place::Memory { name, .. } => name.clone(),
            Place::Disk { path, .. } => path.display().to_string(),
        }
    }
}

mod drivers {
    use super::*;

    pub fn rusqlite(place: &Place) -> Res<Seen> {
        use rusqlite::{Connection, OpenFlags, params};
        let open = || -> Res<Connection> {
            let c = Connection::open_with_flags(
                place.uri(),
                OpenFlags::SQLITE_OPEN_READ_WRITE
                    | OpenFlags::SQLITE_OPEN_CREATE
                    | OpenFlags::SQLITE_OPEN_URI,
            )?;
            c.busy_timeout(BUSY)?;
            Ok(c)
        };
        let writer = open()?;
        let mode: String = writer.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if mode != "wal" {
            return Err(format!("journal_mode=WAL answered {mode}").into());
        }
        writer.execute_batch(SCHEMA)?;
        let reader = open()?;
        for b in 0..BATCHES {
            let tx = writer.unchecked_transaction()?;
            for n in b * BATCH..(b + 1) * BATCH {
                let (name, qty) = row(n);
                tx.execute(INSERT, params![name, qty])?;
            }
            tx.commit()?;
            // Another connection sees each committed batch.
            let seen: i64 = reader.query_row("SELECT count(*) FROM items", [], |r| r.get(0))?;
            if seen != (b + 1) * BATCH {
                return Err(format!("reader saw {seen} rows after batch {b}").into());
            }
        }
        Ok(Seen {
            count: reader.query_row("SELECT count(*) FROM items", [], |r| r.get(0))?,
            sum: reader.query_row("SELECT sum(qty) FROM items", [], |r| r.get(0))?,
            integrity: reader.query_row("PRAGMA integrity_check", [], |r| r.get(0))?,
            journal_mode: reader.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
        })
    }

    pub fn sqlx(place: &Place) -> Res<Seen> {
        use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        rt.block_on(async {
            let options = SqliteConnectOptions::new()
                .filename(place.file())
                .vfs(place.vfs())
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .busy_timeout(BUSY);
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?;
            sqlx::query(SCHEMA).execute(&pool).await?;
            // The batches run concurrently, each a transaction on its own
            // pooled connection; SQLite serialises the writers.
            let mut tasks = Vec::new();
            for b in 0..BATCHES {
                let pool = pool.clone();
                tasks.push(tokio::spawn(async move {
                    let mut tx = pool.begin().await?;
                    for n in b * BATCH..(b + 1) * BATCH {
                        let (name, qty) = row(n);
                        sqlx::query(INSERT)
                            .bind(name)
                            .bind(qty)
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await?;
                    Ok::<_, sqlx::Error>(())
                }));
            }
            for t in tasks {
                t.await??;
            }
            let one = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool);
            let seen = Seen {
                count: one("SELECT count(*) FROM items").await?,
                sum: one("SELECT sum(qty) FROM items").await?,
                integrity: sqlx::query_scalar("PRAGMA integrity_check")
                    .fetch_one(&pool)
                    .await?,
                journal_mode: sqlx::query_scalar("PRAGMA journal_mode")
                    .fetch_one(&pool)
                    .await?,
            };
            pool.close().await;
            Ok(seen)
        })
    }

    pub fn diesel(place: &Place) -> Res<Seen> {
        use diesel::connection::SimpleConnection;
        use diesel::prelude::*;
        use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
        use diesel::sql_types::{BigInt, Text};

        #[derive(Debug)]
        struct Setup;
        impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Setup {
            fn on_acquire(&self, c: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
                c.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")
                    .map_err(diesel::r2d2::Error::QueryError)
            }
        }
        #[derive(QueryableByName)]
        struct Int {
            #[diesel(sql_type = BigInt)]
            v: i64,
        }
        #[derive(QueryableByName)]
        struct Txt {
            #[diesel(sql_type = Text)]
            v: String,
        }

        let pool = Pool::builder()
            .max_size(4)
            .connection_customizer(Box::new(Setup))
            .build(ConnectionManager::<SqliteConnection>::new(place.uri()))?;
        pool.get()?.batch_execute(SCHEMA)?;
        std::thread::scope(|s| -> Res<()> {
            let workers: Vec<_> = (0..BATCHES)
                .map(|b| {
                    let pool = pool.clone();
                    s.spawn(move || -> Result<(), String> {
                        let mut c = pool.get().map_err(|e| e.to_string())?;
                        c.immediate_transaction(|c| {
                            for n in b * BATCH..(b + 1) * BATCH {
                                let (name, qty) = row(n);
                                diesel::sql_query(INSERT)
                                    .bind::<Text, _>(name)
                                    .bind::<BigInt, _>(qty)
                                    .execute(c)?;
                            }
                            Ok::<_, diesel::result::Error>(())
                        })
                        .map_err(|e| e.to_string())
                    })
                })
                .collect();
            for w in workers {
                w.join().map_err(|_| "a diesel worker panicked")??;
            }
            Ok(())
        })?;
        let mut c = pool.get()?;
        let int = |c: &mut SqliteConnection, sql: &str| -> QueryResult<i64> {
            diesel::sql_query(sql).get_result::<Int>(c).map(|r| r.v)
        };
        let txt = |c: &mut SqliteConnection, sql: &str| -> QueryResult<String> {
            diesel::sql_query(sql).get_result::<Txt>(c).map(|r| r.v)
        };
        Ok(Seen {
            count: int(&mut c, "SELECT count(*) AS v FROM items")?,
            sum: int(&mut c, "SELECT sum(qty) AS v FROM items")?,
            integrity: txt(
                &mut c,
                "SELECT integrity_check AS v FROM pragma_integrity_check",
            )?,
            journal_mode: txt(&mut c, "SELECT journal_mode AS v FROM pragma_journal_mode")?,
        })
    }
}

/// Counts checks and prints each outcome.
#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

impl Tally {
    fn check(&mut self, what: &str, outcome: Result<String, String>) {
        match outcome {
            Ok(detail) => {
                self.passed += 1;
                println!("ok    {what}: {detail}");
            }
            Err(why) => {
                self.failed += 1;
                println!("FAIL  {what}: {why}");
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// The encrypted stack's stored files: database and WAL, no row text, no
/// SQLite header.
fn check_ciphertext(files: &[(String, Vec<u8>)]) -> Result<String, String> {
    let mut total = 0;
    for (name, bytes) in files {
        if contains(bytes, MARKER.as_bytes()) {
            return Err(format!("{name} holds row text in clear"));
        }
        if contains(bytes, b"SQLite format 3\0") {
            return Err(format!("{name} holds a plaintext SQLite header"));
        }
        total += bytes.len();
    }
    if total == 0 {
        return Err("nothing stored".to_owned());
    }
    Ok(format!(
        "{} files, {total} bytes, no plaintext",
        files.len()
    ))
}

/// The checksum stack's database file: row text in clear (the scan above
/// would see it), every page's cksumvfs trailer valid.
fn check_checksummed(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if !contains(&bytes, MARKER.as_bytes()) {
        return Err("row text not found in the plaintext file".to_owned());
    }
    let page = match bytes.get(16..18) {
        Some(&[1, 0]) => 65536,
        Some(&[hi, lo]) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => return Err("no database header".to_owned()),
    };
    if bytes[20] != 8 {
        return Err(format!("reserve is {}, cksumvfs needs 8", bytes[20]));
    }
    for (i, p) in bytes.chunks(page).enumerate() {
        if vfs_cksm::verify_cksumvfs_page(p) != Some(true) {
            return Err(format!("page {} has no valid trailer", i + 1));
        }
    }
    Ok(format!(
        "{} pages of {page} bytes, every trailer valid",
        bytes.len() / page
    ))
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(t) => {
            println!("{} passed, {} failed", t.passed, t.failed);
            if t.failed == 0 {
                std::process::ExitCode::SUCCESS
            } else {
                std::process::ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("vfs-compat: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

type Driver = fn(&Place) -> Res<Seen>;

fn run() -> Res<Tally> {
    println!(
        "SQLite {} (one library for every driver)",
        rusqlite::version()
    );
    let mem = MemDb::new();
    let crypto = register(
        "compat-crypto-mem",
        Crypto::new(Cksm::new(mem.clone()), Key::generate()),
        false,
    )?;
    let cksm = register("compat-cksm-disk", Cksm::new(Native::new()?), false)?;
    let dir = std::env::temp_dir().join(format!("vfs-compat-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    let drivers: [(&str, Driver); 3] = [
        ("rusqlite", drivers::rusqlite),
        ("sqlx", drivers::sqlx),
        ("diesel", drivers::diesel),
    ];
    let mut tally = Tally::default();
    for (driver, work) in drivers {
        let places = [
            Place::Memory {
                vfs: "compat-crypto-mem",
                name: format!("/{driver}.db"),
            },
            Place::Disk {
                vfs: "compat-cksm-disk",
                path: dir.join(format!("{driver}.db")),
            },
        ];
        for place in &places {
            let what = format!("{driver} on {}", place.vfs());
            let outcome = work(place).map_err(|e| e.to_string()).and_then(|seen| {
                if seen == Seen::expected() {
                    Ok(format!(
                        "{} rows, sum {}, integrity {}, {}",
                        seen.count, seen.sum, seen.integrity, seen.journal_mode
                    ))
                } else {
                    Err(format!("saw {seen:?}, expected {:?}", Seen::expected()))
                }
            });
            tally.check(&format!("{what}: rows and integrity"), outcome);
            match place {
                Place::Memory { name, .. } => {
                    let files: Vec<(String, Vec<u8>)> = [name.clone(), format!("{name}-wal")]
                        .into_iter()
                        .filter_map(|f| mem.file_bytes(&f).map(|b| (f, b)))
                        .collect();
                    tally.check(
                        &format!("{what}: stored bytes are ciphertext"),
                        check_ciphertext(&files),
                    );
                }
                Place::Disk { path, .. } => {
                    // Move the WAL's pages into the file first.
                    let ckpt = vfs_core::db::Database::open(
                        &place.uri(),
                        vfs_core::db::OpenMode::ReadWrite,
                    )
                    .and_then(|db| {
                        db.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
                        db.close()
                    });
                    let outcome = ckpt
                        .map_err(|e| e.to_string())
                        .and_then(|()| check_checksummed(path));
                    tally.check(&format!("{what}: stored pages carry checksums"), outcome);
                }
            }
        }
    }
    cksm.unregister().map_err(|(_, e)| e)?;
    crypto.unregister().map_err(|(_, e)| e)?;
    std::fs::remove_dir_all(&dir)?;
    Ok(tally)
}
