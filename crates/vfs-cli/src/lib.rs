//! # vfs-cli: `sqlite-vfs`, the operators' tool
//!
//! Everything an operator does to a database file of this workspace's
//! formats without writing Rust: `info` (what the file is, no key needed),
//! `verify` (every page checked, damaged pages named with their b-tree),
//! `encrypt` / `decrypt` / `checksum` (a copy with other layers), `rekey`
//! (a new key in place, crash-safe), `stats` (the I/O of SQL, per
//! operation). The binary is a thin shell over this library, so every
//! command runs in tests without spawning a process, over any
//! [`Storage`](storage::Storage) (the real disk, or the fault layer's
//! power-cut model).
//!
//! The user guide is `docs/cli.md`.
//!
//! ```no_run
//! use vfs_cli::{storage::Disk, ui::Ui};
//! // What `sqlite-vfs info app.db` prints.
//! let report = vfs_cli::info::info(&Disk, "/srv/app.db")?;
//! println!("{report}");
//! # Ok::<(), vfs_cli::error::CliError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod btree;
mod cli;
mod commands;
pub mod copy;
pub mod db;
pub mod detect;
pub mod error;
pub mod info;
pub mod keys;
pub mod rekey;
pub mod replace;
pub mod stack;
pub mod stats;
pub mod storage;
pub mod ui;
pub mod uri;
pub mod verify;
pub mod wal_check;

pub use cli::{
    ChecksumArgs, ChecksumMode, Cli, Command, CompletionsArgs, DecryptArgs, EncryptArgs, InfoArgs,
    RekeyArgs, StatsArgs, VerifyArgs,
};
pub use commands::run;
