//! `cargo xtask fuzz`: runs the cargo-fuzz targets under `fuzz/`.
//!
//! cargo-fuzz needs nightly-only compiler flags (sanitizer coverage); on the
//! stable toolchain this machine has, `RUSTC_BOOTSTRAP=1` unlocks them for
//! this build only. cargo-fuzz is installed from crates.io when absent.

use std::process::{Command, ExitCode};

const TARGETS: [&str; 5] = [
    "vfs_ops",
    "cksm_page",
    "embed_image",
    "crypto_image",
    "crypto_log",
];

pub fn run(args: &[String]) -> ExitCode {
    let mut seconds = 60u64;
    let mut chosen: Vec<String> = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seconds" => match it.next().and_then(|v| v.parse().ok()) {
                Some(s) => seconds = s,
                None => {
                    eprintln!("xtask fuzz: --seconds takes a number");
                    return ExitCode::from(2);
                }
            },
            t if TARGETS.contains(&t) => chosen.push(t.to_owned()),
            other => {
                eprintln!("xtask fuzz: unknown argument {other:?}; targets: {TARGETS:?}");
                return ExitCode::from(2);
            }
        }
    }
    if chosen.is_empty() {
        chosen = TARGETS.iter().map(|t| (*t).to_owned()).collect();
    }
    let have = Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        eprintln!("== installing cargo-fuzz");
        let ok = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("xtask fuzz: could not install cargo-fuzz");
            return ExitCode::FAILURE;
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut failed = 0;
    for t in &chosen {
        eprintln!("== fuzzing {t} for {seconds} s");
        let status = Command::new("cargo")
            .current_dir(&root)
            .env("RUSTC_BOOTSTRAP", "1")
            .args(["fuzz", "run", "-O", t, "--"])
            .arg(format!("-max_total_time={seconds}"))
            .arg("-rss_limit_mb=4096")
            .status();
        if !status.is_ok_and(|s| s.success()) {
            eprintln!("xtask fuzz: {t} found a failure (see fuzz/artifacts/{t}/)");
            failed += 1;
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
