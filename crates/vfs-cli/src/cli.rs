//! The command line (clap).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::keys::{KeyArgs, NewKeyArgs, NewKeyKind};
use crate::stack::ChecksumChoice;

const EXAMPLES: &str = "\
Examples:
  sqlite-vfs info app.db
  sqlite-vfs verify app.db --key-file app.key
  sqlite-vfs encrypt plain.db secret.db --generate-key secret.key
  sqlite-vfs decrypt secret.db plain.db --key-file secret.key
  sqlite-vfs rekey secret.db --key-file old.key --new-key-file new.key
  sqlite-vfs checksum app.db app-crc.db --mode crc32
  sqlite-vfs stats app.db -- 'SELECT count(*) FROM t'
  sqlite-vfs object versions orders.db --store s3://bucket/dbs
  sqlite-vfs completions bash > /etc/bash_completion.d/sqlite-vfs

Keys are never taken from the command line itself: --key-file, --key-env,
the SQLITE_VFS_KEY variable (SQLITE_VFS_NEW_KEY for rekey's new key), or a
prompt without echo on the terminal. A database encrypted with a raw key
takes 64 hex digits (or a 32-byte file); one encrypted with a passphrase
takes the passphrase.

Exit status: 0 success (verify: clean), 1 verify found damage, 2 error
(verify: could not check).";

/// sqlite-vfs: tell what an SQLite database file is, verify every page,
/// encrypt, decrypt, rekey in place (crash-safe), add or change
/// checksums, and measure the I/O of SQL, for the encryption and checksum
/// formats of the sqlite-vfs-rs crates.
#[derive(Parser, Debug)]
#[command(name = "sqlite-vfs", version, after_long_help = EXAMPLES)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
    /// No progress bars or summary lines (reports and errors still print)
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Say each step on stderr
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// What a file is: plain, cksumvfs, CRC-32 or encrypted (format, key
    /// derivation and cost), page size, reserve, pages, journal mode, a hot
    /// journal or WAL beside it. Needs no key.
    #[command(
        after_long_help = "Example:\n  sqlite-vfs info app.db\n  sqlite-vfs info --json app.db | jq .encryption"
    )]
    Info(InfoArgs),
    /// Check every page (checksums; authentication with the key), list the
    /// damaged ones with page number, offset and b-tree, then run
    /// integrity_check. Exit status 0 clean, 1 damaged, 2 could not check.
    #[command(
        after_long_help = "Examples:\n  sqlite-vfs verify app.db\n  sqlite-vfs verify secret.db --key-file secret.key --json"
    )]
    Verify(VerifyArgs),
    /// Write an encrypted copy of a plaintext database (checksums kept
    /// unless --checksum says otherwise).
    #[command(
        after_long_help = "Examples:\n  sqlite-vfs encrypt plain.db secret.db --generate-key secret.key\n  sqlite-vfs encrypt plain.db secret.db --passphrase          # asks twice\n  SQLITE_VFS_KEY=$(cat k.hex) sqlite-vfs encrypt plain.db secret.db --checksum crc32"
    )]
    Encrypt(EncryptArgs),
    /// Write a plaintext copy of an encrypted database (checksums kept
    /// unless --checksum says otherwise).
    #[command(
        after_long_help = "Example:\n  sqlite-vfs decrypt secret.db plain.db --key-file secret.key"
    )]
    Decrypt(DecryptArgs),
    /// Change the key of an encrypted database in place, crash-safe: a new
    /// file is written and synced beside it, then renamed over it. Stop the
    /// application using it first.
    #[command(
        after_long_help = "Examples:\n  sqlite-vfs rekey secret.db --key-file old.key --generate-key new.key\n  sqlite-vfs rekey secret.db --key-file old.key --new-key-env NEW_PASSPHRASE --passphrase"
    )]
    Rekey(RekeyArgs),
    /// Write a copy with checksums added, changed or removed (encryption
    /// and key kept).
    #[command(
        after_long_help = "Examples:\n  sqlite-vfs checksum app.db app-ck.db                  # cksumvfs format\n  sqlite-vfs checksum app.db app-crc.db --mode crc32\n  sqlite-vfs checksum app-ck.db app.db --mode none --force"
    )]
    Checksum(ChecksumArgs),
    /// Run SQL on a database through its layers and print the I/O each
    /// operation caused (counts, bytes, errors, latency quantiles).
    #[command(
        after_long_help = "Examples:\n  sqlite-vfs stats app.db -- 'SELECT count(*) FROM t'\n  sqlite-vfs stats secret.db --key-file k --storage --json -- 'PRAGMA integrity_check'"
    )]
    Stats(StatsArgs),
    /// Databases kept by vfs-object in an object store (S3 or a local
    /// directory): list versions, restore one, show what they cost.
    #[command(
        after_long_help = "Examples:\n  sqlite-vfs object versions orders.db --store s3://bucket/dbs\n  sqlite-vfs object restore orders.db --lsn 41 --out orders-41.db --store file:///srv/objects\n  sqlite-vfs object cost orders.db --store s3://bucket/dbs"
    )]
    Object(crate::object::ObjectArgs),
    /// Print a shell completion script.
    #[command(after_long_help = "Example:\n  sqlite-vfs completions zsh > ~/.zfunc/_sqlite-vfs")]
    Completions(CompletionsArgs),
}

/// `info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// The database file
    pub file: PathBuf,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

/// `verify`.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// The database file
    pub file: PathBuf,
    /// The key, for an encrypted database.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Check pages only; skip PRAGMA integrity_check
    #[arg(long)]
    pub no_integrity_check: bool,
}

/// `encrypt`.
#[derive(Args, Debug)]
pub struct EncryptArgs {
    /// The plaintext database (left as it is)
    pub input: PathBuf,
    /// The encrypted copy to write
    pub output: PathBuf,
    /// The output's key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Its kind.
    #[command(flatten)]
    pub kind: NewKeyKind,
    /// Checksums under the encryption
    #[arg(long, value_enum, default_value = "keep")]
    pub checksum: ChecksumChoice,
    /// Replace OUTPUT if it exists
    #[arg(long)]
    pub force: bool,
}

/// `decrypt`.
#[derive(Args, Debug)]
pub struct DecryptArgs {
    /// The encrypted database (left as it is)
    pub input: PathBuf,
    /// The plaintext copy to write
    pub output: PathBuf,
    /// The key of the encrypted database.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Checksums of the copy
    #[arg(long, value_enum, default_value = "keep")]
    pub checksum: ChecksumChoice,
    /// Replace OUTPUT if it exists
    #[arg(long)]
    pub force: bool,
}

/// `rekey`.
#[derive(Args, Debug)]
pub struct RekeyArgs {
    /// The encrypted database
    pub file: PathBuf,
    /// The current key.
    #[command(flatten)]
    pub key: KeyArgs,
    /// The new key.
    #[command(flatten)]
    pub new: NewKeyArgs,
}

/// A checksum format to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChecksumMode {
    /// SQLite's cksumvfs format (8-byte trailer; stock cksumvfs reads it)
    Cksumvfs,
    /// CRC-32 with the page number (12-byte trailer; also detects misplaced
    /// pages)
    Crc32,
    /// No checksums
    None,
}

impl ChecksumMode {
    /// As a [`ChecksumChoice`].
    pub fn choice(self) -> ChecksumChoice {
        match self {
            ChecksumMode::Cksumvfs => ChecksumChoice::Cksumvfs,
            ChecksumMode::Crc32 => ChecksumChoice::Crc32,
            ChecksumMode::None => ChecksumChoice::None,
        }
    }
}

/// `checksum`.
#[derive(Args, Debug)]
pub struct ChecksumArgs {
    /// The database (left as it is)
    pub input: PathBuf,
    /// The copy to write
    pub output: PathBuf,
    /// The checksum format of the copy
    #[arg(long, value_enum, default_value = "cksumvfs")]
    pub mode: ChecksumMode,
    /// The key, for an encrypted database (the copy keeps it).
    #[command(flatten)]
    pub key: KeyArgs,
    /// Replace OUTPUT if it exists
    #[arg(long)]
    pub force: bool,
}

/// `stats`.
#[derive(Args, Debug)]
pub struct StatsArgs {
    /// The database file
    pub file: PathBuf,
    /// The key, for an encrypted database.
    #[command(flatten)]
    pub key: KeyArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// Measure what reaches the storage, under the encryption and checksum
    /// layers (default: what SQLite asks for)
    #[arg(long)]
    pub storage: bool,
    /// Open the database read-only
    #[arg(long)]
    pub read_only: bool,
    /// SQL to run (each argument may hold several statements)
    #[arg(last = true, required = true, value_name = "SQL")]
    pub sql: Vec<String>,
}

/// `completions`.
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}
