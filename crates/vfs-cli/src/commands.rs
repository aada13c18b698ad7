//! Each command: resolve paths and keys, run, print.

use clap::CommandFactory;
use serde::Serialize;
use vfs_crypto::{KdfParams, KeyDerivation};

use crate::cli::{
    ChecksumArgs, Cli, Command, DecryptArgs, EncryptArgs, InfoArgs, RekeyArgs, StatsArgs,
    VerifyArgs,
};
use crate::copy::{self, CopyJob, CopyReport};
use crate::detect::{Layout, detect};
use crate::error::{CliError, EXIT_FAILED, EXIT_OK, Result};
use crate::keys::{self, KEY_ENV, KeyKind, NEW_KEY_ENV};
use crate::stack::Layers;
use crate::storage::{Disk, resolve};
use crate::ui::{Ui, out};
use crate::{info, rekey, stats, verify};

/// Runs the parsed command line; returns the exit status. Errors are
/// printed to stderr.
pub fn run(cli: Cli) -> u8 {
    let ui = Ui::new(cli.quiet, cli.verbose);
    match dispatch(cli.command, &ui) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sqlite-vfs: error: {e}");
            EXIT_FAILED
        }
    }
}

fn dispatch(command: Command, ui: &Ui) -> Result<u8> {
    match command {
        Command::Info(a) => info_cmd(a),
        Command::Verify(a) => verify_cmd(a, ui),
        Command::Encrypt(a) => encrypt_cmd(a, ui),
        Command::Decrypt(a) => decrypt_cmd(a, ui),
        Command::Rekey(a) => rekey_cmd(a, ui),
        Command::Checksum(a) => checksum_cmd(a, ui),
        Command::Stats(a) => stats_cmd(a),
        Command::Completions(a) => {
            let mut cmd = Cli::command();
            clap_complete::generate(a.shell, &mut cmd, "sqlite-vfs", &mut std::io::stdout());
            Ok(EXIT_OK)
        }
    }
}

fn print_json(value: &impl Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| CliError::new(format!("writing JSON: {e}")))?;
    out(text);
    Ok(())
}

fn info_cmd(a: InfoArgs) -> Result<u8> {
    let path = resolve(&a.file)?;
    let report = info::info(&Disk, &path)?;
    if a.json {
        print_json(&report)?;
    } else {
        out(report.to_string().trim_end());
    }
    Ok(EXIT_OK)
}

fn key_kind(layout: &Layout) -> KeyKind {
    layout
        .encryption
        .as_ref()
        .map_or(KeyKind::Raw, |h| KeyKind::of(h.key_derivation))
}

fn verify_cmd(a: VerifyArgs, ui: &Ui) -> Result<u8> {
    let path = resolve(&a.file)?;
    let layout = detect(&Disk, &path)?;
    let key = if layout.layers.encrypted {
        keys::optional(&a.key, key_kind(&layout), &path)?
    } else {
        None
    };
    let opts = verify::VerifyOptions {
        integrity_check: !a.no_integrity_check,
    };
    let report = verify::verify(&Disk, &path, key.as_ref(), opts, ui)?;
    if a.json {
        print_json(&report)?;
    } else {
        print_verify(&report);
    }
    Ok(report.exit_code())
}

fn print_verify(r: &verify::VerifyReport) {
    let verdict = match r.verdict {
        verify::Verdict::Clean => "clean",
        verify::Verdict::Damaged => "DAMAGED",
        verify::Verdict::NotChecked => "not checked",
    };
    out(format!(
        "{}: {verdict} ({}, {} pages of {} bytes)",
        r.file, r.format, r.pages, r.page_size
    ));
    if !r.checks.is_empty() {
        out(format!("checked: {}", r.checks.join(", ")));
    }
    for b in &r.bad_pages {
        let owner = match (&b.btree, &b.kind, &b.role) {
            (Some(name), Some(kind), Some(role)) if role == "unread" => format!(" [{kind} {name}]"),
            (Some(name), Some(kind), Some(role)) => format!(" [{kind} {name}, {role}]"),
            _ => " [b-tree unknown]".into(),
        };
        out(format!(
            "bad page {} at offset {}: {}{owner}",
            b.page, b.offset, b.problem
        ));
    }
    for f in &r.bad_wal_frames {
        out(format!(
            "bad WAL frame {} (page {}) at offset {}: {}",
            f.frame, f.page, f.offset, f.problem
        ));
    }
    for p in &r.problems {
        out(format!("problem: {p}"));
    }
    for n in &r.notes {
        out(format!("note: {n}"));
    }
}

fn say_copy(ui: &Ui, verb: &str, r: &CopyReport) {
    ui.say(format!(
        "{verb} {} -> {}: {} pages of {} bytes, {} -> {} ({} mode)",
        r.input, r.output, r.pages, r.page_size, r.from, r.to, r.journal_mode
    ));
}

fn encrypt_cmd(a: EncryptArgs, ui: &Ui) -> Result<u8> {
    let input = resolve(&a.input)?;
    let output = resolve(&a.output)?;
    let layout = detect(&Disk, &input)?;
    if layout.layers.encrypted {
        return Err(CliError::new(format!("{input}: already encrypted")).hint(
            "`sqlite-vfs rekey` changes its key; `sqlite-vfs decrypt` writes a plaintext copy",
        ));
    }
    if a.kind.generate_key.is_some() && (a.key.key_file.is_some() || a.key.key_env.is_some()) {
        return Err(CliError::new(
            "--generate-key makes the key: it cannot be combined with --key-file or --key-env",
        ));
    }
    copy::check_output(&Disk, &input, &output, a.force)?;
    let secret = keys::new_key(
        a.key.key_file.as_deref(),
        a.key.key_env.as_deref(),
        KEY_ENV,
        &a.kind,
        &output,
        ("--key-file", "--key-env"),
    )?;
    let job = CopyJob {
        input: &input,
        output: &output,
        input_key: None,
        output_layers: Layers {
            encrypted: true,
            checksums: a.checksum.resolve(layout.layers.checksums),
        },
        output_key: Some(&secret),
        kdf: a.kind.kdf,
        force: a.force,
    };
    let report = copy::copy(&Disk, &layout, &job, ui)?;
    say_copy(ui, "encrypted", &report);
    Ok(EXIT_OK)
}

fn decrypt_cmd(a: DecryptArgs, ui: &Ui) -> Result<u8> {
    let input = resolve(&a.input)?;
    let output = resolve(&a.output)?;
    let layout = detect(&Disk, &input)?;
    if !layout.layers.encrypted {
        return Err(CliError::new(format!(
            "{input}: not encrypted ({})",
            layout.layers
        )));
    }
    copy::check_output(&Disk, &input, &output, a.force)?;
    let secret = keys::existing(&a.key, key_kind(&layout), &input)?;
    let job = CopyJob {
        input: &input,
        output: &output,
        input_key: Some(&secret),
        output_layers: Layers {
            encrypted: false,
            checksums: a.checksum.resolve(layout.layers.checksums),
        },
        output_key: None,
        kdf: KdfParams::DEFAULT,
        force: a.force,
    };
    let report = copy::copy(&Disk, &layout, &job, ui)?;
    say_copy(ui, "decrypted", &report);
    Ok(EXIT_OK)
}

fn checksum_cmd(a: ChecksumArgs, ui: &Ui) -> Result<u8> {
    let input = resolve(&a.input)?;
    let output = resolve(&a.output)?;
    let layout = detect(&Disk, &input)?;
    let wanted = a.mode.choice().resolve(layout.layers.checksums);
    if wanted == layout.layers.checksums {
        let what = wanted.map_or("no checksums", |m| m.name());
        return Err(CliError::new(format!("{input}: already has {what}"))
            .hint("choose another --mode (cksumvfs, crc32 or none)"));
    }
    copy::check_output(&Disk, &input, &output, a.force)?;
    let (secret, kdf) = match &layout.encryption {
        Some(h) => (
            Some(keys::existing(&a.key, key_kind(&layout), &input)?),
            match h.key_derivation {
                KeyDerivation::Argon2id(p) => p,
                KeyDerivation::RawKey => KdfParams::DEFAULT,
            },
        ),
        None => (None, KdfParams::DEFAULT),
    };
    let job = CopyJob {
        input: &input,
        output: &output,
        input_key: secret.as_ref(),
        output_layers: Layers {
            encrypted: layout.layers.encrypted,
            checksums: wanted,
        },
        output_key: secret.as_ref(),
        kdf,
        force: a.force,
    };
    let report = copy::copy(&Disk, &layout, &job, ui)?;
    say_copy(ui, "copied", &report);
    Ok(EXIT_OK)
}

fn rekey_cmd(a: RekeyArgs, ui: &Ui) -> Result<u8> {
    let path = resolve(&a.file)?;
    let layout = detect(&Disk, &path)?;
    if !layout.layers.encrypted {
        return Err(
            CliError::new(format!("{path}: not encrypted ({})", layout.layers))
                .hint("`sqlite-vfs encrypt IN OUT` writes an encrypted copy"),
        );
    }
    let old = keys::existing(&a.key, key_kind(&layout), &path)?;
    crate::db::check_key(&layout, &old)?;
    let new = keys::new_key(
        a.new.new_key_file.as_deref(),
        a.new.new_key_env.as_deref(),
        NEW_KEY_ENV,
        &a.new.kind,
        &path,
        ("--new-key-file", "--new-key-env"),
    )?;
    let r = rekey::rekey(&Disk, &path, &old, &new, a.new.kind.kdf, ui)?;
    ui.say(format!(
        "rekeyed {}: {} -> {} ({} pages, {}, {} mode)",
        r.file, r.old_key, r.new_key, r.pages, r.layers, r.journal_mode
    ));
    Ok(EXIT_OK)
}

fn stats_cmd(a: StatsArgs) -> Result<u8> {
    let path = resolve(&a.file)?;
    let layout = detect(&Disk, &path)?;
    let key = if layout.layers.encrypted {
        Some(keys::existing(&a.key, key_kind(&layout), &path)?)
    } else {
        None
    };
    let opts = stats::StatsOptions {
        at_storage: a.storage,
        read_only: a.read_only,
    };
    let report = stats::stats(&Disk, &path, key.as_ref(), &a.sql, opts)?;
    if a.json {
        print_json(&report)?;
    } else {
        for r in &report.results {
            for row in &r.rows {
                let cells: Vec<String> = row.iter().map(stats::plain_value).collect();
                out(cells.join("|"));
            }
        }
        out(format!(
            "\nI/O of {} ({}), measured at the {} level:\n",
            report.file,
            report.format,
            if a.storage { "storage" } else { "SQLite" }
        ));
        out(report.table.trim_end());
    }
    Ok(EXIT_OK)
}
