//! The user's dependency graph:
//!
//! * `cargo xtask compat [--update]`: builds and runs `compat/` (rusqlite,
//!   sqlx and diesel at their newest, one SQLite, the workspace's crates)
//!   and the sqlx and diesel examples that share its workspace,
//!   from its committed `Cargo.lock` (`--update` first moves the lockfile to
//!   the newest releases). Its own target directory: `target/compat`.
//! * `cargo xtask deps-floor`: builds and runs the library crates against
//!   the LOWEST `libsqlite3-sys` of the range the workspace declares, in a
//!   generated crate under `target/deps-floor/` (the workspace itself cannot:
//!   its rusqlite dev-dependency pins a newer one), once on the system's
//!   SQLite and once on the one that version bundles.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use crate::cargo;

/// The library crates: every crate users depend on (vfs-conformance is a
/// test harness whose API is rusqlite's, vfs-bench a tool).
const LIBRARY_CRATES: &[&str] = &[
    "vfs-core",
    "vfs-page",
    "vfs-observe",
    "vfs-memdb",
    "vfs-mvcc",
    "vfs-cksm",
    "vfs-crypto",
    "vfs-embed",
    "vfs-fault",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn step(msg: &str) {
    eprintln!("== {msg}");
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let status = cmd
        .status()
        .map_err(|e| format!("{what}: could not start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn finish(cmd: &str, r: Result<(), String>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {cmd}: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn compat(args: &[String]) -> ExitCode {
    let update = match args {
        [] => false,
        [a] if a == "--update" => true,
        _ => {
            eprintln!("usage: cargo xtask compat [--update]");
            return ExitCode::from(2);
        }
    };
    let root = root();
    let manifest = root.join("compat/Cargo.toml");
    let target = root.join("target/compat");
    let r = (|| {
        if update {
            step("cargo update (compat/Cargo.lock to the newest releases)");
            run(
                cargo().arg("update").arg("--manifest-path").arg(&manifest),
                "cargo update",
            )?;
        }
        step("compat: cargo tree -i libsqlite3-sys (one SQLite for every driver)");
        run(
            cargo()
                .args(["tree", "--locked", "-e", "normal", "-i", "libsqlite3-sys"])
                .arg("--manifest-path")
                .arg(&manifest)
                .env("CARGO_TARGET_DIR", &target),
            "cargo tree",
        )?;
        // One build of the whole compat workspace (the program and the sqlx
        // and diesel examples): features are unified once, so SQLite and
        // the drivers compile once.
        step("compat: cargo build --workspace (compat, examples/sqlx, examples/diesel)");
        run(
            cargo()
                .args([
                    "build",
                    "--quiet",
                    "--locked",
                    "--workspace",
                    "--manifest-path",
                ])
                .arg(&manifest)
                .env("CARGO_TARGET_DIR", &target),
            "cargo build",
        )?;
        for (bin, what) in [
            (
                "vfs-compat",
                "rusqlite, sqlx and diesel on crypto(cksm(memdb)) and cksm(native)",
            ),
            ("example-sqlx", "examples/sqlx"),
            ("example-diesel", "examples/diesel"),
        ] {
            step(&format!("compat: {what}"));
            run(&mut Command::new(target.join("debug").join(bin)), bin)?;
        }
        Ok(())
    })();
    finish("compat", r)
}

/// The lowest version of the `libsqlite3-sys` requirement in the root
/// manifest's `[workspace.dependencies]` (`">=X, <Y"`).
fn declared_floor(root: &Path) -> Result<String, String> {
    let manifest = std::fs::read_to_string(root.join("Cargo.toml"))
        .map_err(|e| format!("reading Cargo.toml: {e}"))?;
    let line = manifest
        .lines()
        .find(|l| l.trim_start().starts_with("libsqlite3-sys ="))
        .ok_or("Cargo.toml declares no libsqlite3-sys")?;
    let req = line
        .split("version = \"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .ok_or_else(|| format!("no version requirement in {line:?}"))?;
    let floor = req
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix(">="))
        .ok_or_else(|| format!("the requirement {req:?} has no lower bound >=X"))?;
    Ok(floor.trim().to_owned())
}

/// The version of `name` in a lockfile.
fn locked_version(lock: &Path, name: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(lock).map_err(|e| format!("reading the lockfile: {e}"))?;
    let mut lines = text.lines();
    while let Some(l) = lines.next() {
        if l == format!("name = \"{name}\"")
            && let Some(v) = lines.next().and_then(|v| v.strip_prefix("version = \""))
        {
            return Ok(v.trim_end_matches('"').to_owned());
        }
    }
    Err(format!("{name} is not in the lockfile"))
}

pub fn floor(args: &[String]) -> ExitCode {
    if !args.is_empty() {
        eprintln!("usage: cargo xtask deps-floor");
        return ExitCode::from(2);
    }
    let root = root();
    let r = (|| {
        let floor = declared_floor(&root)?;
        let dir = root.join("target/deps-floor");
        std::fs::create_dir_all(dir.join("src")).map_err(|e| e.to_string())?;
        let deps: String = LIBRARY_CRATES
            .iter()
            .map(|c| format!("{c} = {{ path = {:?} }}\n", root.join("crates").join(c)))
            .collect();
        let manifest = format!(
            "# Generated by `cargo xtask deps-floor`; do not edit.\n\
             [package]\nname = \"deps-floor\"\nversion = \"0.0.0\"\nedition = \"2024\"\n\
             publish = false\n\n[workspace]\n\n[features]\n\
             bundled = [\"vfs-core/bundled\"]\n\n[dependencies]\n{deps}"
        );
        std::fs::write(dir.join("Cargo.toml"), manifest).map_err(|e| e.to_string())?;
        std::fs::write(
            dir.join("src/main.rs"),
            include_str!("../deps-floor/main.rs"),
        )
        .map_err(|e| e.to_string())?;
        let cargo_in = |args: &[&str]| {
            let mut c = cargo();
            c.args(args)
                .arg("--manifest-path")
                .arg(dir.join("Cargo.toml"))
                .env("CARGO_TARGET_DIR", dir.join("target"))
                .env("FLOOR_LIBSQLITE3_SYS", &floor);
            c
        };
        step(&format!(
            "deps-floor: libsqlite3-sys pinned to the declared floor {floor}"
        ));
        run(
            &mut cargo_in(&["generate-lockfile", "--quiet"]),
            "cargo generate-lockfile",
        )?;
        run(
            &mut cargo_in(&[
                "update",
                "--quiet",
                "-p",
                "libsqlite3-sys",
                "--precise",
                &floor,
            ]),
            "cargo update --precise",
        )?;
        let locked = locked_version(&dir.join("Cargo.lock"), "libsqlite3-sys")?;
        if locked != floor {
            return Err(format!(
                "the lockfile has libsqlite3-sys {locked}, not {floor}"
            ));
        }
        step("deps-floor: on the system's SQLite (libsqlite3-sys without `bundled`)");
        run(
            &mut cargo_in(&["run", "--quiet", "--locked"]),
            "the floor program (system SQLite)",
        )?;
        step("deps-floor: on the SQLite that libsqlite3-sys bundles (`bundled`)");
        run(
            &mut cargo_in(&["run", "--quiet", "--locked", "--features", "bundled"]),
            "the floor program (bundled SQLite)",
        )
    })();
    finish("deps-floor", r)
}
