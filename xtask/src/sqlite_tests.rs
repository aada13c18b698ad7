//! `cargo xtask sqlite-tests [--quick] [--stack NAME]... [--only PART]...
//! [--script PATTERN]... [--reuse-baseline] [--jobs N]`: SQLite's own test
//! programs against the project's VFSes.
//!
//! Programs written by SQLite's authors, built from SQLite's source tree
//! (Debian 12's `sqlite3` source package, 3.40.1, fetched and unpacked once
//! under `target/sqlite-src/`, never committed), each linked with the
//! extension crate's static library through `xtask/c/vfsext_glue.c`: a
//! `SQLITE_EXTRA_INIT` function that registers every stack of
//! `crates/vfs-ext` when SQLite initialises. Three parts by default, and a
//! fourth on request:
//!
//! 1. **speedtest1** `--verify` on every stack that can hold its database,
//!    in the `delete` and `wal` journal modes: the verification hash must
//!    equal the one of SQLite's own `unix` VFS for the same options.
//!    Timings go to `target/sqlite-tests/results.json`.
//! 2. **mptest** (several processes on one database) on the stacks whose
//!    files other processes can share (those over the platform VFS), for
//!    `crash01`, `multiwrite01` and `config02` in the DELETE, WAL, PERSIST
//!    and TRUNCATE journal modes (`--journalmode`; not `config02` in WAL,
//!    whose page-size changes WAL forbids: `unix` fails it too).
//! 3. **The TCL suite**: `testfixture` with a stack made the default VFS
//!    (`VFSEXT_DEFAULT`), on the scripts of the `veryquick` set that test
//!    the VFS layer (see [`tcl::PATTERNS`]); the same scripts on `unix` are
//!    the baseline, and every test that fails on a stack but not on `unix`
//!    must be explained in [`known`] (and `docs/testing.md`).
//! 4. **The fault and crash scripts** (`--only faults`, never by default:
//!    they take hours on two cores): the same harness on the scripts of
//!    SQLite's `full` set that inject I/O errors or simulate power loss
//!    ([`tcl::FAULT_PATTERNS`]), on the same stacks and, beside them,
//!    SQLite's own cksumvfs.
//!
//! `--script PATTERN` (`*` wildcards) restricts parts 3 and 4 to matching
//! scripts; `--reuse-baseline` takes the `unix` and cksumvfs runs of those
//! parts from an earlier invocation (they do not depend on the project's
//! code), so a long part can be run one stack at a time without repeating
//! the baseline.
//!
//! Every program run has a time limit. When run as root, the TCL suite runs
//! as an unprivileged user the task creates (`vfsext-test`): several
//! scripts test permissions that root ignores.
//!
//! `--quick` (for CI): speedtest1 at a small size on every stack, mptest's
//! `crash01` in two modes, the TCL selection on `native` only.
//!
//! The run ends with `N passed, M failed`; any unexplained difference or
//! failure makes it exit non-zero.

mod build;
mod known;
mod proc;
mod programs;
mod tcl;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Where a stack keeps its database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    /// Real files through the platform VFS: other processes can share them.
    Disk,
    /// In the process's memory; a name starting with `/` is shared by the
    /// process's connections.
    Memory,
}

/// A stack the extension may register.
#[derive(Clone, Copy, Debug)]
pub struct Stack {
    pub name: &'static str,
    pub storage: Storage,
    /// URI parameters every database name needs on this stack (a key).
    pub params: &'static str,
}

/// A 256-bit key for the crypto stacks.
const HEXKEY: &str = "hexkey=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

/// Every stack this task knows how to drive, in the extension's order (see
/// `docs/extension.md`). A registered name missing here is reported and
/// skipped: add it with its storage.
pub const STACKS: &[Stack] = &[
    Stack {
        name: "native",
        storage: Storage::Disk,
        params: "",
    },
    Stack {
        name: "mem",
        storage: Storage::Memory,
        params: "",
    },
    Stack {
        name: "mvcc",
        storage: Storage::Memory,
        params: "",
    },
    Stack {
        name: "cksm",
        storage: Storage::Disk,
        params: "",
    },
    Stack {
        name: "cksm-mem",
        storage: Storage::Memory,
        params: "",
    },
    Stack {
        name: "cksm-crc32",
        storage: Storage::Disk,
        params: "",
    },
    Stack {
        name: "wrap",
        storage: Storage::Disk,
        params: "",
    },
    Stack {
        name: "crypto",
        storage: Storage::Disk,
        params: HEXKEY,
    },
    Stack {
        name: "crypto-cksm",
        storage: Storage::Disk,
        params: HEXKEY,
    },
    Stack {
        name: "crypto-mem",
        storage: Storage::Memory,
        params: HEXKEY,
    },
];

/// The stacks the TCL suite runs on by default: the platform VFS through
/// vfs-core, a `Wrap` over it (when the extension registers one), and cksm
/// over it.
const TCL_DEFAULT_STACKS: &[&str] = &["native", "wrap", "cksm"];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    Speedtest1,
    Mptest,
    Tcl,
    /// The fault-injection and crash scripts of SQLite's `full` set.
    Faults,
}

pub struct Opts {
    pub quick: bool,
    /// Restricts every part to these stacks (the `unix` baseline always runs).
    pub stacks: Vec<String>,
    pub parts: BTreeSet<Part>,
    /// Restricts the TCL parts to scripts matching one of these patterns.
    pub scripts: Vec<String>,
    /// Takes the TCL parts' baseline runs from an earlier invocation.
    pub reuse_baseline: bool,
    pub jobs: usize,
}

pub struct Paths {
    /// The workspace.
    pub root: PathBuf,
    /// `target/sqlite-src`: the downloaded and unpacked source (cached).
    pub src_cache: PathBuf,
    /// `target/sqlite-tests`: builds, run directories, results.
    pub work: PathBuf,
    /// Cargo's target directory for the extension crate.
    pub ext_target: PathBuf,
}

/// One pass/fail line of the final count.
pub struct Check {
    pub part: Part,
    pub name: String,
    pub passed: bool,
}

pub fn step(msg: &str) {
    println!("== {msg}");
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

const USAGE: &str = "usage: cargo xtask sqlite-tests [--quick] [--stack NAME]... \
[--only speedtest1|mptest|tcl|faults]... [--script PATTERN]... [--reuse-baseline] [--jobs N]";

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut opts = Opts {
        quick: false,
        stacks: Vec::new(),
        parts: BTreeSet::new(),
        scripts: Vec::new(),
        reuse_baseline: false,
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |what: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{a} needs {what}\n{USAGE}"))
        };
        match a.as_str() {
            "--quick" => opts.quick = true,
            "--reuse-baseline" => opts.reuse_baseline = true,
            "--script" => {
                let v = value("a script name or pattern")?;
                opts.scripts
                    .extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
            }
            "--stack" => {
                let v = value("a stack name")?;
                opts.stacks
                    .extend(v.split(',').filter(|s| !s.is_empty()).map(str::to_owned));
            }
            "--only" => {
                for p in value("a part")?.split(',') {
                    opts.parts.insert(match p {
                        "speedtest1" => Part::Speedtest1,
                        "mptest" => Part::Mptest,
                        "tcl" => Part::Tcl,
                        "faults" => Part::Faults,
                        other => return Err(format!("unknown part `{other}`\n{USAGE}")),
                    });
                }
            }
            "--jobs" => {
                opts.jobs = value("a number")?
                    .parse()
                    .map_err(|_| format!("--jobs needs a number\n{USAGE}"))?;
            }
            other => return Err(format!("unknown option `{other}`\n{USAGE}")),
        }
    }
    if opts.parts.is_empty() {
        opts.parts = [Part::Speedtest1, Part::Mptest, Part::Tcl].into();
    }
    Ok(opts)
}

pub fn run(args: &[String]) -> ExitCode {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xtask sqlite-tests: {e}");
            return ExitCode::from(2);
        }
    };
    match run_all(&opts) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("xtask sqlite-tests: {e}");
            ExitCode::FAILURE
        }
    }
}

fn paths() -> Result<Paths, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf();
    let cwd = std::env::current_dir().map_err(|e| e.to_string())?;
    let (target, ext_target) = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => (cwd.join(&t), cwd.join(&t)),
        None => (root.join("target"), root.join("crates/vfs-ext/target")),
    };
    Ok(Paths {
        src_cache: target.join("sqlite-src"),
        work: target.join("sqlite-tests"),
        ext_target,
        root,
    })
}

fn run_all(opts: &Opts) -> Result<bool, String> {
    let started = Instant::now();
    let paths = paths()?;
    fs::create_dir_all(&paths.work)
        .map_err(|e| format!("creating {}: {e}", paths.work.display()))?;
    let progs = build::prepare(&paths)?;
    let build_secs = started.elapsed().as_secs_f64();
    println!("   source and builds ready in {build_secs:.0} s");

    let registered = tcl::registered_vfs(&progs, &paths)?;
    let mut notes = Vec::new();
    let mut known_regs: Vec<Stack> = Vec::new();
    for name in &registered {
        match STACKS.iter().find(|s| s.name == name) {
            Some(s) => known_regs.push(*s),
            None => notes.push(format!(
                "the extension registers `{name}`, which STACKS in xtask/src/sqlite_tests.rs does \
                 not describe: skipped (add it with its storage)"
            )),
        }
    }
    for wanted in &opts.stacks {
        if !registered.iter().any(|r| r == wanted) {
            return Err(format!(
                "--stack {wanted}: the extension registers no such VFS (it has: {})",
                registered.join(", ")
            ));
        }
    }
    let chosen: Vec<Stack> = known_regs
        .iter()
        .filter(|s| opts.stacks.is_empty() || opts.stacks.iter().any(|w| w == s.name))
        .copied()
        .collect();
    println!(
        "   stacks registered: {}; tested here: {}",
        registered.join(", "),
        chosen.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
    );

    let mut checks: Vec<Check> = Vec::new();
    let mut json = String::from("{\n");
    let _ = writeln!(
        json,
        "  \"sqlite_version\": \"{}\",\n  \"quick\": {},\n  \"build_seconds\": {build_secs:.1},",
        build::SQLITE_VERSION,
        opts.quick
    );

    if opts.parts.contains(&Part::Speedtest1) {
        let t = Instant::now();
        let r = programs::speedtest1(opts, &progs, &paths, &chosen);
        checks.extend(r.checks);
        let _ = writeln!(json, "  \"speedtest1\": {},", r.json);
        notes.extend(r.notes);
        println!("   speedtest1 part: {:.0} s", t.elapsed().as_secs_f64());
    }
    if opts.parts.contains(&Part::Mptest) {
        let t = Instant::now();
        let shared: Vec<Stack> = chosen
            .iter()
            .filter(|s| s.storage == Storage::Disk)
            .copied()
            .collect();
        let r = programs::mptest(opts, &progs, &paths, &shared);
        checks.extend(r.checks);
        let _ = writeln!(json, "  \"mptest\": {},", r.json);
        notes.extend(r.notes);
        println!("   mptest part: {:.0} s", t.elapsed().as_secs_f64());
    }
    let tcl_chosen = if opts.parts.contains(&Part::Tcl) || opts.parts.contains(&Part::Faults) {
        tcl_stacks(opts, &chosen, &mut notes)
    } else {
        Vec::new()
    };
    for (part, set, key) in [
        (Part::Tcl, &tcl::VFS_SCRIPTS, "tcl"),
        (Part::Faults, &tcl::FAULT_SCRIPTS, "faults"),
    ] {
        if !opts.parts.contains(&part) {
            continue;
        }
        let t = Instant::now();
        let r = tcl::suite(opts, set, &progs, &paths, &tcl_chosen)?;
        checks.extend(r.checks);
        let _ = writeln!(json, "  \"{key}\": {},", r.json);
        notes.extend(r.notes);
        println!("   {key} part: {:.0} s", t.elapsed().as_secs_f64());
    }

    let total = started.elapsed().as_secs_f64();
    let _ = writeln!(json, "  \"total_seconds\": {total:.1}\n}}");
    let results = paths.work.join("results.json");
    if let Err(e) = fs::write(&results, json) {
        notes.push(format!("could not write {}: {e}", results.display()));
    }

    step("summary");
    for n in &notes {
        println!("note: {n}");
    }
    let failed: Vec<&Check> = checks.iter().filter(|c| !c.passed).collect();
    for c in &failed {
        println!("FAILED: {:?}: {}", c.part, c.name);
    }
    println!(
        "results: {} (build {build_secs:.0} s, total {total:.0} s)",
        results.display()
    );
    println!(
        "{} passed, {} failed",
        checks.len() - failed.len(),
        failed.len()
    );
    Ok(failed.is_empty())
}

/// The stacks the TCL parts run on: those asked for with `--stack`, else
/// `native` with `--quick`, else [`TCL_DEFAULT_STACKS`]; disk stacks only.
fn tcl_stacks(opts: &Opts, chosen: &[Stack], notes: &mut Vec<String>) -> Vec<Stack> {
    let wanted: Vec<&str> = if !opts.stacks.is_empty() {
        opts.stacks.iter().map(String::as_str).collect()
    } else if opts.quick {
        vec!["native"]
    } else {
        TCL_DEFAULT_STACKS.to_vec()
    };
    let mut out = Vec::new();
    for w in wanted {
        match chosen.iter().find(|s| s.name == w) {
            Some(s) if s.storage == Storage::Disk => out.push(*s),
            Some(s) => notes.push(format!(
                "TCL suite: `{}` keeps databases in memory; the suite needs files shared \
                 between connections and processes, so it runs on disk stacks only",
                s.name
            )),
            None => notes.push(format!(
                "TCL suite: the extension registers no `{w}` stack (not run)"
            )),
        }
    }
    out
}

/// `s` as a JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A fresh, empty directory.
pub fn fresh_dir(dir: &Path) -> Result<(), String> {
    let _ = fs::remove_dir_all(dir);
    fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))
}
