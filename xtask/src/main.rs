//! Project automation: `cargo xtask <command>`.
#![forbid(unsafe_code)]

mod deps;
mod ext;
mod fuzz;
mod instructions;
mod moto;
mod sqlite_tests;

use std::process::{Command, ExitCode};

const HELP: &str = "cargo xtask <command>

commands:
  bench [--quick] [--reps N] [--filter NAME] [--no-curves] [--sizes N,N,..] [--peers]
        build in release mode and run every workload on SQLite's own VFSes
        and on every backend and stack, in rounds; prints tables (each
        ratio with a 95% interval over paired rounds, the targets met,
        missed or not resolved), a size sweep, memory per database byte;
        writes target/bench/results.json, chart.svg and curves.svg;
        --peers also builds bench-peers (SQLCipher) and reports it beside
        crypto
  bench-instructions [--targets LIST] [--install-valgrind]
        instructions per operation of the bench's single-connection
        workloads under valgrind's callgrind (noise-free, unlike times);
        needs valgrind (--install-valgrind installs it with apt-get);
        writes target/bench/instructions.json
  ext-test [--release] [--keep]
        build the loadable extension (crates/vfs-ext) and drive the sqlite3
        shell, Python's sqlite3 module and the Rust crates with it
  sqlite-tests [--quick] [--stack NAME]... [--only speedtest1|mptest|tcl]... [--jobs N]
        SQLite's own test programs (speedtest1, mptest, the TCL suite's
        VFS scripts) built from SQLite's source and run on every stack,
        compared with SQLite's unix VFS; writes target/sqlite-tests/results.json
  compat [--update]
        build and run compat/: rusqlite, sqlx and diesel at their newest, in
        one binary and one SQLite with the workspace's crates (--update first
        moves compat/Cargo.lock to the newest releases)
  deps-floor
        build and run the library crates against the lowest libsqlite3-sys of
        the declared range (generated crate in target/deps-floor), on the
        system SQLite and on the bundled one
  moto-install
        install moto (an S3-protocol server, pinned, from PyPI) into a
        virtualenv under target/moto/venv for vfs-object's tests
  fuzz [--seconds N] [TARGET]...
        run the cargo-fuzz targets under fuzz/ (vfs_ops, cksm_page,
        embed_image, crypto_image, crypto_log), 60 s each by default
  help  this text";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("bench") => bench(&args[1..]),
        Some("bench-instructions") => instructions::run(&args[1..]),
        Some("compat") => deps::compat(&args[1..]),
        Some("deps-floor") => deps::floor(&args[1..]),
        Some("ext-test") => ext::run(&args[1..]),
        Some("fuzz") => fuzz::run(&args[1..]),
        Some("moto-install") => moto::run(&args[1..]),
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
    let peers = args.iter().any(|a| a == "--peers");
    let mut args: Vec<String> = args.iter().filter(|a| *a != "--peers").cloned().collect();
    if peers {
        match build_peers() {
            Ok(bin) => {
                args.push("--peers-bin".to_owned());
                args.push(bin);
            }
            Err(e) => {
                eprintln!("xtask bench --peers: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let status = cargo()
        .args(["run", "--release", "--quiet", "-p", "vfs-bench", "--"])
        .args(&args)
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

/// Builds `bench-peers` (SQLCipher with vendored OpenSSL; a crate outside
/// the workspace so its SQLite never replaces the workspace's) in its own
/// target directory and returns the binary, which vfs-bench runs in every
/// round.
fn build_peers() -> Result<String, String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent directory")?
        .to_owned();
    let target_dir = root.join("target/peers");
    eprintln!(
        "xtask bench --peers: building SQLCipher (vendored OpenSSL; the first build takes minutes)"
    );
    let status = cargo()
        .args(["build", "--release", "--quiet", "--manifest-path"])
        .arg(root.join("bench-peers/Cargo.toml"))
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "building bench-peers failed ({status}); it needs a C compiler, make and perl for OpenSSL"
        ));
    }
    Ok(target_dir.join("release/bench-peers").display().to_string())
}
