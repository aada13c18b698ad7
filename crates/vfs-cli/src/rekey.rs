//! `rekey`: a new key (or key kind, or Argon2id cost) for an encrypted
//! database, in place, crash-safe.
//!
//! 1. The current key is checked against the file's key check value.
//! 2. The database is opened with it, in exclusive locking mode, and an
//!    exclusive lock taken (`BEGIN EXCLUSIVE`): if another connection uses
//!    it, the command stops ("file is in use"). Opening rolls back a hot
//!    journal; in WAL mode the WAL is checkpointed into the file
//!    (`wal_checkpoint(TRUNCATE)`), so the file alone holds every
//!    committed transaction.
//! 3. `VACUUM INTO` a temporary file beside it under the new key; the
//!    connection closes (SQLite removes its empty WAL).
//! 4. The old file's stale journal and WAL are removed (a WAL must be
//!    empty, a journal not hot: otherwise someone wrote meanwhile and the
//!    command stops); page 1 as stored is remembered.
//! 5. The copy gets the old journal mode back and passes `PRAGMA
//!    quick_check` under the new key.
//! 6. [`install`]: sync the copy, sync the
//!    directory, check that page 1 and the size are unchanged and no
//!    journal or WAL appeared, rename over the old file, sync the
//!    directory.
//!
//! A crash or power cut at any point leaves the old database with the old
//! key, or (once the last directory sync is done) the new one with the new
//! key; running `rekey` again after an interrupted run cleans up and starts
//! over. The test suite proves it on the fault layer's power-cut model by
//! cutting the power before every durability operation of a rekey.

use serde::Serialize;
use vfs_crypto::{KdfParams, Secret};

use crate::db::{self, READ_WRITE};
use crate::detect::{JOURNAL_MAGIC, detect};
use crate::error::{CliError, Context, Result};
use crate::replace::{clear_leftovers, finish_copy, install, temp_for};
use crate::stack::StackSpec;
use crate::storage::Storage;
use crate::ui::{ReadProgress, Ui};
use crate::uri;

/// What `rekey` did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RekeyReport {
    /// The database.
    pub file: String,
    /// Its layers.
    pub layers: String,
    /// The key derivation before.
    pub old_key: String,
    /// The key derivation after.
    pub new_key: String,
    /// Pages written.
    pub pages: u64,
    /// The journal mode kept.
    pub journal_mode: String,
}

/// Re-encrypts the database at `path` from `old` to `new` in place
/// (`kdf`: Argon2id cost when `new` is a passphrase).
pub fn rekey(
    storage: &dyn Storage,
    path: &str,
    old: &Secret,
    new: &Secret,
    kdf: KdfParams,
    ui: &Ui,
) -> Result<RekeyReport> {
    let layout = detect(storage, path)?;
    let Some(header) = &layout.encryption else {
        return Err(
            CliError::new(format!("{path}: not encrypted ({})", layout.layers))
                .hint("`sqlite-vfs encrypt IN OUT` writes an encrypted copy"),
        );
    };
    db::check_key(&layout, old)?;
    let tmp = temp_for(path);
    clear_leftovers(storage, &tmp)?;
    let done =
        run(storage, path, &layout, old, new, kdf, &tmp, ui).map(|(pages, wal)| RekeyReport {
            file: path.to_owned(),
            layers: layout.layers.to_string(),
            old_key: header.key_derivation.to_string(),
            new_key: match new {
                Secret::Key(_) => "raw 256-bit key".into(),
                Secret::Passphrase(_) => vfs_crypto::KeyDerivation::Argon2id(kdf).to_string(),
            },
            pages,
            journal_mode: if wal { "wal" } else { "rollback" }.into(),
        });
    if done.is_err() {
        let _ = clear_leftovers(storage, &tmp);
    }
    done
}

#[allow(clippy::too_many_arguments)]
fn run(
    storage: &dyn Storage,
    path: &str,
    layout: &crate::detect::Layout,
    old: &Secret,
    new: &Secret,
    kdf: KdfParams,
    tmp: &str,
    ui: &Ui,
) -> Result<(u64, bool)> {
    let bar = ui.bar(layout.size, "re-encrypting");
    let src_spec = StackSpec::new(layout.layers).observed(ReadProgress::recorder(&bar));
    let dst_spec = StackSpec {
        kdf,
        ..StackSpec::new(layout.layers)
    };
    let wal = {
        let src = db::open(storage, &src_spec, path, Some(old), READ_WRITE)?;
        let conn = &src.conn;
        conn.execute_batch("PRAGMA busy_timeout = 0; PRAGMA locking_mode = EXCLUSIVE;")
            .context(|| path.to_owned())?;
        conn.execute_batch("BEGIN EXCLUSIVE; COMMIT;")
            .map_err(|e| db::in_use(path, e))?;
        let wal = db::journal_mode(conn)? == "wal";
        if wal {
            let busy: i64 = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))
                .map_err(|e| db::in_use(path, e))?;
            if busy != 0 {
                return Err(db::in_use(
                    path,
                    rusqlite::Error::SqliteFailure(
                        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
                        None,
                    ),
                ));
            }
        }
        ui.step(format!("writing {tmp} under the new key"));
        let dst_vfs = storage.register(&dst_spec)?;
        let target = uri::database(tmp, dst_vfs.name(), Some(new), &[]);
        db::vacuum_into(conn, &target, tmp)?;
        wal
    };
    bar.finish_and_clear();

    // The old file's journal and WAL: SQLite has rolled back, checkpointed
    // and closed; what is left is stale, unless someone wrote meanwhile.
    let stale = |storage: &dyn Storage| -> Result<()> {
        let wal_path = format!("{path}-wal");
        if let Some(size) = storage.size(&wal_path)?
            && size > 0
        {
            return Err(written_meanwhile(
                path,
                &format!("a WAL of {size} bytes appeared"),
            ));
        }
        let journal = format!("{path}-journal");
        if storage.size(&journal)?.is_some() && storage.read(&journal, 0, 8)? == JOURNAL_MAGIC {
            return Err(written_meanwhile(path, "a live rollback journal appeared"));
        }
        Ok(())
    };
    stale(storage)?;
    storage.remove(&format!("{path}-wal"))?;
    storage.remove(&format!("{path}-journal"))?;
    let page_size = layout.page_size;
    let page1 = storage.read(path, 0, page_size)?;
    let size = storage.size(path)?;

    ui.step("checking the copy under the new key");
    let finished = finish_copy(storage, &dst_spec, tmp, Some(new), wal)?;
    ui.step(format!("replacing {path}"));
    install(storage, tmp, path, || {
        stale(storage)?;
        if storage.read(path, 0, page_size)? != page1 || storage.size(path)? != size {
            return Err(written_meanwhile(path, "the file changed"));
        }
        Ok(())
    })?;
    Ok((finished.pages, wal))
}

fn written_meanwhile(path: &str, what: &str) -> CliError {
    CliError::new(format!(
        "{path}: written by another connection during the rekey ({what}); it was left as it was"
    ))
    .hint("stop the application using it, then run rekey again")
}
