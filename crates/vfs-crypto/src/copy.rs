//! Encrypting, decrypting and rekeying by copying (`VACUUM INTO`).

use vfs_core::db::{Database, OpenMode};
use vfs_core::{Error, Result, codes};
use vfs_page::RESERVE_PRAGMA;
use zeroize::Zeroizing;

/// The reserved bytes per page a new database on `target`'s VFS needs:
/// what its main file answers to `PRAGMA vfs_page_reserve` (0 for a VFS
/// without a page layer). Opening the probe creates the target file empty,
/// which `VACUUM INTO` accepts.
fn target_reserve(target: &str) -> Result<u8> {
    let probe = Database::open(target, OpenMode::ReadWriteCreate)?;
    match probe.query_text(&format!("PRAGMA {RESERVE_PRAGMA}"), &[])? {
        None => Ok(0),
        Some(a) => a.trim().parse().map_err(|_| {
            Error::new(
                codes::SQLITE_ERROR,
                format!("unexpected answer {a:?} to PRAGMA {RESERVE_PRAGMA}"),
            )
        }),
    }
}

/// The `VACUUM INTO` target for a copy to `target`, a `file:` URI that may
/// name another VFS and carry its key (`file:new.db?vfs=crypto&hexkey=...`):
/// `target` plus the `reserve=N` parameter its VFS needs (48 for crypto
/// alone, 56 for crypto over cksm, 0 for a plain VFS), so that
/// `VACUUM INTO ?1` with it, run on any open connection of any binding,
/// writes a copy that is encrypted, re-encrypted under another key, or
/// decrypted, depending on the source and the target.
///
/// SQLite reads `reserve=` in a `VACUUM INTO` target from 3.53 on; before
/// that the copy gets the reserve requested on the source connection, so
/// on an older SQLite also request it there first
/// (`SQLITE_FCNTL_RESERVE_BYTES`; rusqlite: `conn.file_control(Some("main"),
/// FileControl::ReserveBytes(&mut n))`), as [`encrypt_database`] does.
///
/// It opens `target` once to ask its VFS, which creates the file empty
/// (`VACUUM INTO` accepts an empty file). The result holds the key when
/// `target` does, and is zeroized when dropped; pass it as a parameter, not
/// inside the SQL text.
///
/// Errors: `SQLITE_MISUSE` when `target` is not a `file:` URI or already
/// names `reserve=`; the target's open errors. `VACUUM INTO`'s own errors
/// (`SQLITE_ERROR` "output file already exists" for a non-empty target, an
/// open transaction, the source's read errors such as `SQLITE_NOTADB` for a
/// wrong key) come from the statement.
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
/// // The copy, from a connection of any binding (here rusqlite).
/// let into = vfs_crypto::vacuum_into_target(&target)?;
/// plain.execute("VACUUM INTO ?1", [into.as_str()]).unwrap();
///
/// let secret = Connection::open(&target).unwrap();
/// let v: String = secret.query_row("SELECT v FROM t", [], |r| r.get(0)).unwrap();
/// assert_eq!(v, "hello");
/// # drop(secret);
/// # reg.unregister().map_err(|(_, e)| e)?;
/// # Ok::<(), vfs_core::Error>(())
/// ```
pub fn vacuum_into_target(target: &str) -> Result<Zeroizing<String>> {
    target_and_reserve(target).map(|(uri, _)| uri)
}

/// [`vacuum_into_target`], and the reserve it names.
fn target_and_reserve(target: &str) -> Result<(Zeroizing<String>, u8)> {
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
            "the target URI already names reserve=; vacuum_into_target sets it from the \
             target's VFS",
        ));
    }
    let reserve = target_reserve(target)?;
    let sep = if target.contains('?') { '&' } else { '?' };
    Ok((
        Zeroizing::new(format!("{target}{sep}reserve={reserve}")),
        reserve,
    ))
}

/// Copies the database at URI `from` into a new database at URI `to` (see
/// [`vacuum_into_target`]) on a connection of its own; `from` is opened
/// read-only and must exist.
fn copy(from: &str, to: &str) -> Result<()> {
    let src = Database::open(from, OpenMode::ReadOnly)?;
    // Writers of the source may hold it briefly.
    src.set_busy_timeout(std::time::Duration::from_secs(5))?;
    let (into, reserve) = target_and_reserve(to)?;
    // SQLite before 3.53 ignores VACUUM INTO's `reserve=` and gives the
    // copy the reserve requested on the source connection (at least the
    // source's own): request the target's there too. Nothing is written to
    // the read-only source.
    src.connection().set_reserve_bytes("main", reserve)?;
    src.execute("VACUUM INTO ?1", &[into.as_str()])
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
