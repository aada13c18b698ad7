//! `sqlite-vfs`: the command-line face of [`vfs_cli`]; all logic lives in
//! the library.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(vfs_cli::run(vfs_cli::Cli::parse()))
}
