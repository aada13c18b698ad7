//! Opening a database through the VFS stack its layers need, and the few
//! SQL steps the commands share.

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use vfs_crypto::Secret;

use crate::detect::Layout;
use crate::error::{CliError, Context, Result, sql_message};
use crate::keys::KeyKind;
use crate::stack::{Registered, StackSpec};
use crate::storage::Storage;
use crate::uri;

/// A connection and the VFS it runs on; the connection closes first.
pub struct Db {
    /// The connection.
    pub conn: Connection,
    /// Its VFS (unregistered after the connection closed).
    pub vfs: Registered,
}

/// Read-write, no create.
pub const READ_WRITE: OpenFlags = OpenFlags::SQLITE_OPEN_READ_WRITE
    .union(OpenFlags::SQLITE_OPEN_URI)
    .union(OpenFlags::SQLITE_OPEN_NO_MUTEX);
/// Read-only.
pub const READ_ONLY: OpenFlags = OpenFlags::SQLITE_OPEN_READ_ONLY
    .union(OpenFlags::SQLITE_OPEN_URI)
    .union(OpenFlags::SQLITE_OPEN_NO_MUTEX);

/// Opens `path` through `vfs` with `secret`.
pub fn connect(
    vfs: &Registered,
    path: &str,
    secret: Option<&Secret>,
    flags: OpenFlags,
) -> Result<Connection> {
    let uri = uri::database(path, vfs.name(), secret, &[]);
    let conn =
        Connection::open_with_flags(uri.as_str(), flags).context(|| format!("opening {path}"))?;
    Ok(conn)
}

/// Registers `spec` over `storage` and opens `path` through it.
pub fn open(
    storage: &dyn Storage,
    spec: &StackSpec,
    path: &str,
    secret: Option<&Secret>,
    flags: OpenFlags,
) -> Result<Db> {
    let vfs = storage.register(spec)?;
    let conn = connect(&vfs, path, secret, flags)?;
    Ok(Db { conn, vfs })
}

/// Checks `secret` against an encrypted file's key check value before any
/// file is touched: "wrong key" is then said plainly, not as SQLite's "file
/// is not a database".
pub fn check_key(layout: &Layout, secret: &Secret) -> Result<()> {
    if let Some(header) = &layout.encryption {
        header.unlock(secret).map_err(|e| {
            CliError::new(format!("{}: {}", layout.path, e.message())).hint(
                match KeyKind::of(header.key_derivation) {
                    KeyKind::Raw => {
                        "this database takes a raw key: 64 hex digits, or a 32-byte file"
                    }
                    KeyKind::Passphrase => "this database takes a passphrase",
                },
            )
        })?;
    }
    Ok(())
}

/// One text value of a query (for pragmas).
pub fn text(conn: &Connection, sql: &str) -> Result<Option<String>> {
    conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0))
        .optional()
        .map(|v| {
            v.map(|v| match v {
                rusqlite::types::Value::Text(s) => s,
                rusqlite::types::Value::Integer(i) => i.to_string(),
                other => format!("{other:?}"),
            })
        })
        .context(|| sql.into())
}

/// The connection's journal mode (`delete`, `wal`, …).
pub fn journal_mode(conn: &Connection) -> Result<String> {
    Ok(text(conn, "PRAGMA journal_mode")?
        .unwrap_or_default()
        .to_ascii_lowercase())
}

/// `PRAGMA quick_check`: every b-tree page read (and so authenticated and
/// checksum-verified by the layers) and its structure checked. `Err` with
/// SQLite's findings unless it answers `ok`.
pub fn quick_check(conn: &Connection, what: &str) -> Result<()> {
    let mut stmt = conn
        .prepare("PRAGMA quick_check")
        .context(|| format!("checking {what}"))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .context(|| format!("checking {what}"))?;
    if rows == ["ok"] {
        Ok(())
    } else {
        Err(CliError::new(format!(
            "{what} failed its check: {}",
            rows.join("; ")
        )))
    }
}

/// Writes a copy of `conn`'s main database to the new database at
/// `target` (a URI naming its VFS and key): `VACUUM INTO` with the reserve
/// the target's layers need (`vfs_crypto::vacuum_into_target`; the bundled
/// SQLite reads `reserve=` there).
///
/// The copy is written without syncs (`VACUUM INTO` takes the source
/// connection's `synchronous` setting, switched off for it and restored
/// after): the caller makes the finished copy durable with one sync before
/// anything depends on it, whatever the SQLite version does.
pub fn vacuum_into(conn: &Connection, target: &str, what: &str) -> Result<()> {
    let synchronous = text(conn, "PRAGMA synchronous")?.unwrap_or_else(|| "2".into());
    conn.execute_batch("PRAGMA synchronous = OFF")
        .context(|| what.into())?;
    vfs_core::clear_last_error();
    let copied = vfs_crypto::vacuum_into_target(target)
        .map_err(|e| CliError::new(format!("preparing {what}: {}", e.message())))
        .and_then(|into| {
            conn.execute("VACUUM INTO ?1", [into.as_str()])
                .map(drop)
                .context(|| format!("copying into {what}"))
        });
    let restored = conn
        .execute_batch(&format!("PRAGMA synchronous = {}", synchronous.trim()))
        .context(|| what.into());
    copied.and(restored)
}

/// Maps SQLite's "busy" and "locked" errors to a message that says the
/// file is in use.
pub fn in_use(path: &str, e: rusqlite::Error) -> CliError {
    let busy = e.sqlite_error().is_some_and(|f| {
        matches!(
            f.code,
            rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
        )
    });
    if busy {
        CliError::new(format!(
            "{path}: file is in use: another connection holds a lock on it"
        ))
        .hint("stop the application using it (or wait for its transaction), then run this again")
    } else {
        CliError::new(format!("{path}: {}", sql_message(&e)))
    }
}
