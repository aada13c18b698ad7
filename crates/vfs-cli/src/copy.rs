//! `encrypt`, `decrypt` and `checksum`: a copy of a database into a new
//! file with other layers (or another key), through `VACUUM INTO`, put in
//! place crash-safely (see [`replace`]).

use serde::Serialize;
use vfs_crypto::{KdfParams, Secret};

use crate::db::{self, READ_ONLY, READ_WRITE};
use crate::detect::Layout;
use crate::error::{CliError, Result};
use crate::replace::{self, clear_leftovers, finish_copy, install, temp_for};
use crate::stack::{Layers, StackSpec};
use crate::storage::Storage;
use crate::ui::{ReadProgress, Ui};
use crate::uri;

/// One copy: from `input` (its layers detected) to a new `output` with
/// `output_layers`.
#[derive(Clone, Copy, Debug)]
pub struct CopyJob<'a> {
    /// The database to copy (left as it is).
    pub input: &'a str,
    /// The new file.
    pub output: &'a str,
    /// The input's key, if it is encrypted.
    pub input_key: Option<&'a Secret>,
    /// The output's layers.
    pub output_layers: Layers,
    /// The output's key, if it is encrypted.
    pub output_key: Option<&'a Secret>,
    /// Argon2id cost when the output's key is a new passphrase.
    pub kdf: KdfParams,
    /// Replace an existing output.
    pub force: bool,
}

/// What a copy did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CopyReport {
    /// The input.
    pub input: String,
    /// The output.
    pub output: String,
    /// The input's layers.
    pub from: String,
    /// The output's layers.
    pub to: String,
    /// Pages written.
    pub pages: u64,
    /// Their size.
    pub page_size: u64,
    /// The journal mode kept (`rollback` or `wal`).
    pub journal_mode: String,
}

/// Refuses to go on when `output` is `input`, or exists and `force` is
/// not given; answers whether it exists.
pub fn check_output(storage: &dyn Storage, input: &str, output: &str, force: bool) -> Result<bool> {
    if input == output {
        return Err(
            CliError::new(format!("{input}: input and output are the same file"))
                .hint("write to a new file; `sqlite-vfs rekey` changes a key in place"),
        );
    }
    let exists = storage.size(output)?.is_some();
    if exists && !force {
        return Err(
            CliError::new(format!("{output}: exists; refusing to overwrite it"))
                .hint("choose another output, or add --force to replace it"),
        );
    }
    Ok(exists)
}

/// A replaced output's journal and WAL are removed before the rename (they
/// would be played into the new file); refuses when that would lose
/// committed data: a WAL with frames, a hot journal.
fn refuse_live_sidecars(storage: &dyn Storage, output: &str) -> Result<()> {
    let wal = crate::detect::wal_beside(storage, output)?;
    let journal = crate::detect::journal_beside(storage, output)?;
    let live = match (&wal, &journal) {
        (Some(w), _) if w.frames > 0 => {
            Some(format!("a WAL with {} frames not checkpointed", w.frames))
        }
        (_, Some(j)) if j.hot => Some("a hot journal".to_owned()),
        _ => None,
    };
    match live {
        Some(what) => Err(CliError::new(format!(
            "{output}: has {what}; replacing it would lose them"
        ))
        .hint("open it once with SQLite (and its key) so it recovers and checkpoints, or remove it and its -wal/-journal yourself")),
        None => Ok(()),
    }
}

/// Runs `job` on `layout` (detected from `job.input`).
pub fn copy(
    storage: &dyn Storage,
    layout: &Layout,
    job: &CopyJob<'_>,
    ui: &Ui,
) -> Result<CopyReport> {
    if layout.layers.encrypted {
        let key = job.input_key.ok_or_else(|| {
            CliError::new(format!("{}: encrypted, and no key was given", job.input))
        })?;
        db::check_key(layout, key)?;
    }
    let existed = check_output(storage, job.input, job.output, job.force)?;
    if existed {
        refuse_live_sidecars(storage, job.output)?;
    }
    let tmp = temp_for(job.output);
    clear_leftovers(storage, &tmp)?;
    let done = run(storage, layout, job, &tmp, existed, ui);
    if done.is_err() {
        let _ = clear_leftovers(storage, &tmp);
    }
    done
}

fn run(
    storage: &dyn Storage,
    layout: &Layout,
    job: &CopyJob<'_>,
    tmp: &str,
    existed: bool,
    ui: &Ui,
) -> Result<CopyReport> {
    let bar = ui.bar(layout.size, "copying");
    let src_spec = StackSpec::new(layout.layers).observed(ReadProgress::recorder(&bar));
    let dst_spec = StackSpec {
        kdf: job.kdf,
        ..StackSpec::new(job.output_layers)
    };
    ui.step(format!("reading {} ({})", job.input, layout.layers));
    // Read-write when allowed, so that a hot journal is rolled back and a
    // WAL recovered as any connection would; nothing is written otherwise.
    let src = match db::open(storage, &src_spec, job.input, job.input_key, READ_WRITE) {
        Ok(db) => db,
        Err(_) => db::open(storage, &src_spec, job.input, job.input_key, READ_ONLY)?,
    };
    let wal = db::journal_mode(&src.conn)? == "wal";
    {
        let dst_vfs = storage.register(&dst_spec)?;
        let target = uri::database(tmp, dst_vfs.name(), job.output_key, &[]);
        ui.step(format!("writing {tmp} ({})", job.output_layers));
        db::vacuum_into(&src.conn, &target, job.output)?;
    }
    drop(src);
    bar.finish_and_clear();
    ui.step("checking the copy");
    let finished = finish_copy(storage, &dst_spec, tmp, job.output_key, wal)?;
    if existed {
        replace::remove_sidecars(storage, job.output)?;
    }
    ui.step(format!("moving it to {}", job.output));
    install(storage, tmp, job.output, || Ok(()))?;
    Ok(CopyReport {
        input: job.input.to_owned(),
        output: job.output.to_owned(),
        from: layout.layers.to_string(),
        to: job.output_layers.to_string(),
        pages: finished.pages,
        page_size: finished.page_size,
        journal_mode: if wal { "wal" } else { "rollback" }.into(),
    })
}
