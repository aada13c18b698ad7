//! Putting a new database file in place of another (or at a new path)
//! without a moment where a crash leaves neither: the copy is written to a
//! temporary file beside the target, checked, synced, then renamed over the
//! target, and the directory is synced before the command reports success.
//!
//! The steps and what a power cut before each leaves (`T` the target, `N`
//! the temporary file):
//!
//! | step | a cut before it leaves |
//! |---|---|
//! | remove leftovers of an earlier run (`N`, `N-journal`, `N-wal`) | `T` as it was |
//! | `VACUUM INTO N`, restore the journal mode, check `N` | `T` as it was (`N` partial: removed by the next run) |
//! | remove `T`'s stale journal and WAL (checked empty or not hot) | `T` as it was |
//! | sync `N` | `T` as it was |
//! | sync the directory | `T` as it was |
//! | rename `N` to `T` | `T` as it was, `N` complete |
//! | sync the directory | `T` as it was (the rename is not durable yet) |
//! | (done) | the new `T` |
//!
//! The stale journal and WAL of the old `T` are removed, and that removal is
//! made durable, before the rename: they belong to the old file, and a WAL
//! or hot journal beside the new file would be played into it (with
//! encryption its frames do not even authenticate under the new salt).

use vfs_crypto::Secret;

use crate::db::{self, READ_WRITE};
use crate::error::{CliError, Context, Result};
use crate::stack::StackSpec;
use crate::storage::{Storage, dir_of};

/// The temporary file a new database for `target` is written to.
pub fn temp_for(target: &str) -> String {
    format!("{target}.sqlite-vfs-tmp")
}

/// Removes what an interrupted earlier run left: the temporary file and
/// its journal and WAL. (Never the target: until the final rename it is
/// the database.)
pub fn clear_leftovers(storage: &dyn Storage, tmp: &str) -> Result<()> {
    for p in [
        tmp.to_owned(),
        format!("{tmp}-journal"),
        format!("{tmp}-wal"),
    ] {
        storage.remove(&p)?;
    }
    Ok(())
}

/// What the finished copy holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Finished {
    /// Its pages.
    pub pages: u64,
    /// Its page size.
    pub page_size: u64,
}

/// Finishes the copy at `tmp` (written by `VACUUM INTO`, which leaves
/// rollback mode): WAL mode again if the source was in WAL mode, then
/// `PRAGMA quick_check` through its layers with its key (every page read,
/// so authenticated and checksum-verified).
pub fn finish_copy(
    storage: &dyn Storage,
    spec: &StackSpec,
    tmp: &str,
    secret: Option<&Secret>,
    wal: bool,
) -> Result<Finished> {
    let db = db::open(storage, spec, tmp, secret, READ_WRITE)?;
    if wal {
        let mode = db::text(&db.conn, "PRAGMA journal_mode=WAL")?.unwrap_or_default();
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(CliError::new(format!(
                "{tmp}: could not restore WAL mode (journal mode {mode})"
            )));
        }
    }
    db::quick_check(&db.conn, "the new copy")?;
    let pages = db::text(&db.conn, "PRAGMA page_count")?
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let page_size = db::text(&db.conn, "PRAGMA page_size")?
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    drop(db);
    Ok(Finished { pages, page_size })
}

/// Durably moves the complete copy `tmp` to `target`: sync it, sync the
/// directory (its entry, and the removals made before this call), run
/// `last_check` (a last look at the target before it is replaced), rename,
/// sync the directory again. Returns only once the new file is durable.
pub fn install(
    storage: &dyn Storage,
    tmp: &str,
    target: &str,
    last_check: impl FnOnce() -> Result<()>,
) -> Result<()> {
    let dir = dir_of(target);
    storage
        .sync_file(tmp)
        .context(|| "making the copy durable".into())?;
    storage.sync_dir(dir)?;
    last_check()?;
    storage
        .rename(tmp, target)
        .context(|| "replacing the file".into())?;
    storage.sync_dir(dir)
}

/// Removes `target`'s journal and WAL before `target` is replaced by a
/// file that is not their database.
pub fn remove_sidecars(storage: &dyn Storage, target: &str) -> Result<()> {
    storage.remove(&format!("{target}-journal"))?;
    storage.remove(&format!("{target}-wal"))
}
