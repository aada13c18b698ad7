//! sqlx's async pool on an encrypted, checksummed database shared in memory.
//!
//! The stack `crypto(cksm(memdb))` is registered once under a name; sqlx
//! reaches it with `SqliteConnectOptions::vfs(name)`. Every pooled
//! connection opens the same shared in-memory name (`/notes.db`) in WAL
//! mode, so concurrent tasks write through one database while readers keep
//! reading. The key is given at registration (sqlx passes no other URI
//! parameters to SQLite). At the end the program scans the stored bytes:
//! the text written is nowhere in them.
//!
//! Run: `cargo run --manifest-path examples/sqlx/Cargo.toml`

use std::error::Error;
use std::time::Duration;

use sqlx::Row;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use vfs_cksm::Cksm;
use vfs_crypto::{Crypto, Key};
use vfs_memdb::MemDb;

const SECRET: &str = "meet at the old mill";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let mem = MemDb::new();
    // In a real program the key comes from a secret store.
    let key = Key::generate();
    let reg = vfs_core::register("notes-vfs", Crypto::new(Cksm::new(mem.clone()), key), false)?;

    let options = SqliteConnectOptions::new()
        .filename("/notes.db") // a shared memdb name: every connection sees it
        .vfs("notes-vfs")
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(options)
        .await?;

    sqlx::query("CREATE TABLE notes(id INTEGER PRIMARY KEY, author TEXT, body TEXT)")
        .execute(&pool)
        .await?;

    // Four writers at once, each a transaction on its own pooled connection.
    let mut writers = Vec::new();
    for author in ["ana", "bo", "cy", "di"] {
        let pool = pool.clone();
        writers.push(tokio::spawn(async move {
            let mut tx = pool.begin().await?;
            for i in 0..25 {
                sqlx::query("INSERT INTO notes(author, body) VALUES (?1, ?2)")
                    .bind(author)
                    .bind(format!("{SECRET} ({author}, note {i})"))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        }));
    }
    for w in writers {
        w.await??;
    }

    let rows =
        sqlx::query("SELECT author, count(*) AS n FROM notes GROUP BY author ORDER BY author")
            .fetch_all(&pool)
            .await?;
    for r in &rows {
        println!(
            "{:>4}: {} notes",
            r.get::<String, _>("author"),
            r.get::<i64, _>("n")
        );
    }
    let check: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&pool)
        .await?;
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await?;
    println!("integrity_check: {check}, journal_mode: {mode}");

    // What the storage holds: ciphertext only, in the database and its WAL.
    for name in ["/notes.db", "/notes.db-wal"] {
        let Some(bytes) = mem.file_bytes(name) else {
            continue;
        };
        let leaked = bytes.windows(SECRET.len()).any(|w| w == SECRET.as_bytes());
        println!(
            "stored {name}: {} bytes, plaintext found: {leaked}",
            bytes.len()
        );
        if leaked {
            return Err("plaintext reached the storage".into());
        }
    }

    pool.close().await;
    reg.unregister().map_err(|(_, e)| e)?;
    Ok(())
}
