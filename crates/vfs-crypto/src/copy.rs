//! Encrypting, decrypting and rekeying by copying (`VACUUM INTO`).

use rusqlite::{Connection, OpenFlags, OptionalExtension};
use vfs_core::{Error, Result, codes};
use vfs_page::RESERVE_PRAGMA;
use zeroize::Zeroizing;

fn sql_error(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => Error::new(
            f.extended_code,
            msg.unwrap_or_else(|| format!("SQLite error {}", f.extended_code)),
        ),
        other => Error::new(codes::SQLITE_ERROR, other.to_string()),
    }
}

/// The reserved bytes per page a new database on `target`'s VFS needs:
/// what its main file answers to `PRAGMA vfs_page_reserve` (0 for a VFS
/// without a page layer). Opening the probe creates the target file empty,
/// which `VACUUM INTO` accepts.
fn target_reserve(target: &str) -> Result<u8> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let probe = Connection::open_with_flags(target, flags).map_err(sql_error)?;
    let answer: Option<String> = probe
        .query_row(&format!("PRAGMA {RESERVE_PRAGMA}"), [], |r| r.get(0))
        .optional()
        .map_err(sql_error)?;
    match answer {
        None => Ok(0),
        Some(a) => a.trim().parse().map_err(|_| {
            Error::new(
                codes::SQLITE_ERROR,
                format!("unexpected answer {a:?} to PRAGMA {RESERVE_PRAGMA}"),
            )
        }),
    }
}

/// Writes a copy of `conn`'s main database to a new database at `target`,
/// a `file:` URI that may name another VFS and carry its key
/// (`file:new.db?vfs=crypto&hexkey=...`): `VACUUM INTO` with the
/// `reserve=N` parameter that `target`'s VFS needs (48 for crypto alone,
/// 56 for crypto over cksm, 0 for a plain VFS), so the copy is encrypted,
/// re-encrypted under another key, or decrypted, depending on the source
/// and the target.
///
/// The SQL equivalent is `VACUUM INTO 'file:new.db?vfs=...&reserve=N'`.
///
/// Errors: `SQLITE_MISUSE` when `target` is not a `file:` URI or already
/// names `reserve=`; `VACUUM INTO`'s own errors (`SQLITE_ERROR` "output
/// file already exists" for a non-empty target, an open transaction on
/// `conn`, the source's read errors such as `SQLITE_NOTADB` for a wrong
/// key).
///
/// ```
/// use rusqlite::Connection;
/// use vfs_core::{Native, register};
/// use vfs_crypto::{Crypto, Key};
///
/// let reg = register("crypto-vacuum-doc", Crypto::keyless(Native::new()?), false)?;
/// let dir = tempfile::tempdir().unwrap();
/// let plain = Connection::open(dir.path().join("plain.db")).unwrap();
/// plain.execute_batch("CREATE TABLE t(v); INSERT INTO t VALUES ('hello');").unwrap();
///
/// let key = Key::generate();
/// let target = format!(
///     "file:{}?vfs=crypto-vacuum-doc&hexkey={}",
///     dir.path().join("secret.db").display(),
///     key.to_hex().as_str()
/// );
/// vfs_crypto::vacuum_into(&plain, &target)?;
///
/// let secret = Connection::open(&target).unwrap();
/// let v: String = secret.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
/// assert_eq!(v, "hello");
/// # drop(secret);
/// # reg.unregister().map_err(|(_, e)| e)?;
/// # Ok::<(), vfs_core::Error>(())
/// ```
pub fn vacuum_into(conn: &Connection, target: &str) -> Result<()> {
    if !target.starts_with("file:") {
        return Err(Error::new(
            codes::SQLITE_MISUSE,
            "the target must be a file: URI (file:path?vfs=name&hexkey=...)",
        ));
    }
    let query = target.split_once('?').map_or("", |(_, q)| q);
    if query
        .split('&')
        .any(|p| p.split('=').next() == Some("reserve"))
    {
        return Err(Error::new(
            codes::SQLITE_MISUSE,
            "the target URI already names reserve=; vacuum_into sets it from the target's VFS",
        ));
    }
    let reserve = target_reserve(target)?;
    let sep = if target.contains('?') { '&' } else { '?' };
    let uri = Zeroizing::new(format!("{target}{sep}reserve={reserve}"));
    conn.execute("VACUUM INTO ?1", [uri.as_str()])
        .map_err(sql_error)?;
    Ok(())
}

/// Copies the database at URI `from` into a new database at URI `to` (see
/// [`vacuum_into`]); `from` is opened read-only.
fn copy(from: &str, to: &str) -> Result<()> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let src = Connection::open_with_flags(from, flags).map_err(sql_error)?;
    vacuum_into(&src, to)
}

/// Encrypts an existing plaintext database: writes an encrypted copy of
/// `plain` (a `file:` URI on a plain VFS) to `encrypted` (a new `file:`
/// URI on a crypto VFS, with its key unless the VFS has one). The source is
/// left untouched; replace it with the copy when the copy is complete.
///
/// ```
/// # use rusqlite::Connection;
/// # use vfs_core::{Native, register};
/// # use vfs_crypto::{Crypto, Key};
/// let key = Key::generate();
/// let reg = register("crypto-encrypt-doc", Crypto::new(Native::new()?, key), false)?;
/// let dir = tempfile::tempdir().unwrap();
/// let path = dir.path().join("old.db");
/// Connection::open(&path).unwrap().execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (7);").unwrap();
///
/// let enc = format!("file:{}?vfs=crypto-encrypt-doc", dir.path().join("new.db").display());
/// vfs_crypto::encrypt_database(&format!("file:{}", path.display()), &enc)?;
/// let x: i64 = Connection::open(&enc).unwrap().query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
/// assert_eq!(x, 7);
/// # reg.unregister().map_err(|(_, e)| e)?;
/// # Ok::<(), vfs_core::Error>(())
/// ```
pub fn encrypt_database(plain: &str, encrypted: &str) -> Result<()> {
    copy(plain, encrypted)
}

/// Decrypts: writes a plaintext copy of `encrypted` (a `file:` URI on a
/// crypto VFS, with its key) to `plain` (a new `file:` URI naming a plain
/// VFS explicitly, e.g. `?vfs=unix`: a `VACUUM INTO` target without `vfs=`
/// uses the source connection's VFS, which would encrypt it again).
pub fn decrypt_database(encrypted: &str, plain: &str) -> Result<()> {
    copy(encrypted, plain)
}

/// Changes the key (or the key-derivation method, or the stack): writes a
/// copy of `old` (a `file:` URI with the current key) re-encrypted to
/// `new` (a new `file:` URI with the new key). Replace the old file with
/// the new one once this returns (on disk: a rename; the WAL and journal
/// of the old file must not remain).
pub fn rekey_database(old: &str, new: &str) -> Result<()> {
    copy(old, new)
}
