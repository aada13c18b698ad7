//! Project automation: `cargo xtask <command>`.
#![forbid(unsafe_code)]

mod ext;
mod fuzz;
mod sqlite_tests;

use std::process::{Command, ExitCode};

const HELP: &str = "cargo xtask <command>

commands:
  bench [--quick] [--reps N] [--filter NAME]
        build in release mode and run every workload on SQLite's own VFSes
        and on every backend and stack; prints tables, writes
        target/bench/results.json and target/bench/chart.svg
  ext-test [--release] [--keep]
        build the loadable extension (crates/vfs-ext) and drive the sqlite3
        shell, Python's sqlite3 module and the Rust crates with it
  sqlite-tests [--quick] [--stack NAME]... [--only speedtest1|mptest|tcl]... [--jobs N]
        SQLite's own test programs (speedtest1, mptest, the TCL suite's
        VFS scripts) built from SQLite's source and run on every stack,
        compared with SQLite's unix VFS; writes target/sqlite-tests/results.json
  fuzz [--seconds N] [TARGET]...
        run the cargo-fuzz targets under fuzz/ (vfs_ops, cksm_page,
        embed_image, crypto_image), 60 s each by default
  help  this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("ext-test") => ext::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("sqlite-tests") => sqlite_tests::run(&args[1..]),
        Some("help") | Some("--help") | Some("-h") | None => {
            println!("{HELP}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("unknown xtask command `{other}`\n\n{HELP}");
            ExitCode::from(2)
        }
    }
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
}

fn bench(args: &[String]) -> ExitCode {
    let status = cargo()
        .args(["run", "--release", "--quiet", "-p", "vfs-bench", "--"])
        .args(args)
        .status();
    match status {
        Ok(s) if s.success() => ExitCode::SUCCESS,
        Ok(s) => {
            eprintln!("xtask bench: the benchmark runner failed ({s})");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xtask bench: could not start cargo: {e}");
            ExitCode::FAILURE
        }
    }
}
