//! The TCL suite: testfixture on a set of SQLite's scripts ([`ScriptSet`]):
//! the VFS-heavy scripts of `veryquick` ([`VFS_SCRIPTS`], part `tcl`) or
//! the fault-injection and crash scripts of `full` ([`FAULT_SCRIPTS`],
//! part `faults`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::build::Programs;
use super::proc::{Ran, parallel, run_limited};
use super::programs::PartResult;
use super::{Check, Opts, Part, Paths, Stack, fresh_dir, is_root, json_str, known, step};

/// The scripts of SQLite's `veryquick` set that are run: those whose names
/// match one of these patterns (`*` matches anything), less [`EXCLUDE`].
/// They test the pager, journals, WAL and its shared memory, locking
/// between connections and processes, crash recovery, corruption handling,
/// backup, vacuum, temporary files, file controls, URIs and the VFS shims
/// SQLite ships (multiplex, quota) layered over the default VFS.
pub const PATTERNS: &[&str] = &[
    "pager*",
    "journal*",
    "wal*",
    "e_wal*",
    "lock*",
    "shared*",
    "exclusive*",
    "superlock*",
    "nolock*",
    "unixexcl*",
    "corrupt*",
    "crash*",
    "backup*",
    "vacuum*",
    "incrvacuum*",
    "mmap*",
    "tempdb*",
    "memjournal*",
    "atomic*",
    "psow*",
    "sync*",
    "rollback*",
    "savepoint*",
    "trans*",
    "stmt.test",
    "io.test",
    "filectrl*",
    "uri*",
    "8_3_names*",
    "delete_db*",
    "zerodamage*",
    "symlink*",
    "dbpage*",
    "cache*",
    "syscall*",
    "oserror*",
    "multiplex*",
    "quota*",
    "pagesize*",
    "tkt-2d1a5c67d*",
];

/// Matched by a pattern but not about the VFS.
const EXCLUDE: &[&str] = &["transitive1.test", "quota-glob.test"];

/// The scripts of SQLite's `full` set that inject I/O errors (`ioerr*`,
/// `*fault*`, `backup_ioerr`: SQLite's `SimulateIOError` hooks in the
/// `unix` VFS beneath the stack, or `testvfs` shims over it) or simulate
/// power loss (`crash*`, `walcrash*`: `test6.c`'s crash VFS over the
/// default VFS, which buffers writes and on a simulated crash writes back
/// a random subset, trashing whole sectors). Most are not in `veryquick`.
pub const FAULT_PATTERNS: &[&str] = &[
    "crash*",
    "ioerr*",
    "pagerfault*",
    "walfault*",
    "walcrash*",
    "mmapfault*",
    "tempfault*",
    "backup_ioerr.test",
];

/// A set of SQLite's TCL scripts run as one part of the task.
#[derive(Clone, Copy, Debug)]
pub struct ScriptSet {
    /// The part it reports as.
    pub part: Part,
    /// Where its runs go under `target/sqlite-tests/` (`tcl`, `faults`).
    pub dir: &'static str,
    /// The `permutations.test` suite whose file list is filtered.
    pub suite: &'static str,
    pub patterns: &'static [&'static str],
    pub exclude: &'static [&'static str],
    /// Per-script time limit: a broken VFS can make a script spin forever
    /// (several of SQLite's fault scripts loop until an attempt succeeds).
    /// Runs other than `unix`'s get [`SLOWDOWN`] times `unix`'s time for the
    /// script, within [`MIN_LIMIT`] and this.
    pub limit: Duration,
    /// Whether a script with an unexplained difference runs once more
    /// (timing-sensitive scripts may fail by chance on a loaded machine).
    pub retry: bool,
}

/// How many times `unix`'s time for a script another run may take.
const SLOWDOWN: u32 = 10;

/// The least time limit of a script.
const MIN_LIMIT: Duration = Duration::from_secs(600);

/// The VFS-heavy scripts of `veryquick` (part `tcl`).
pub const VFS_SCRIPTS: ScriptSet = ScriptSet {
    part: Part::Tcl,
    dir: "tcl",
    suite: "veryquick",
    patterns: PATTERNS,
    exclude: EXCLUDE,
    limit: Duration::from_secs(300),
    retry: true,
};

/// The fault-injection and crash scripts of `full` (part `faults`). Their
/// runs are long (up to minutes per script on `unix`), so the limit is up
/// to an hour and a failing script is not run twice.
pub const FAULT_SCRIPTS: ScriptSet = ScriptSet {
    part: Part::Faults,
    dir: "faults",
    suite: "full",
    patterns: FAULT_PATTERNS,
    exclude: &[],
    limit: Duration::from_secs(3600),
    retry: false,
};

/// The unprivileged account the suite runs as when the task runs as root.
const TEST_USER: &str = "vfsext-test";

/// `*` matches any run of characters.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, rest)) => {
            let Some(tail) = s.strip_prefix(head) else {
                return false;
            };
            (0..=tail.len()).any(|i| tail.is_char_boundary(i) && glob(rest, &tail[i..]))
        }
    }
}

pub fn matches(pattern: &str, s: &str) -> bool {
    glob(pattern, s)
}

/// Runs a small Tcl script in testfixture (in a scratch directory, as the
/// current user) and returns what it printed.
fn tcl_eval(
    progs: &Programs,
    paths: &Paths,
    name: &str,
    script: &str,
    disable: bool,
) -> Result<String, String> {
    let dir = paths.work.join(format!("scratch/{name}"));
    fresh_dir(&dir)?;
    let file = dir.join("script.tcl");
    fs::write(&file, script).map_err(|e| format!("writing {}: {e}", file.display()))?;
    let mut cmd = Command::new(&progs.testfixture);
    cmd.current_dir(&dir)
        .arg(&file)
        .env_remove("VFSEXT_DEFAULT");
    if disable {
        cmd.env("VFSEXT_DISABLE", "1");
    } else {
        cmd.env_remove("VFSEXT_DISABLE");
    }
    let ran = run_limited(cmd, &dir.join("output.txt"), Duration::from_secs(120));
    if ran.ok() {
        Ok(ran.output)
    } else {
        Err(format!(
            "testfixture {name} failed ({}): {}",
            ran.describe(),
            ran.output.trim()
        ))
    }
}

/// The VFS names the extension adds to SQLite's own (registration order).
pub fn registered_vfs(progs: &Programs, paths: &Paths) -> Result<Vec<String>, String> {
    let script = "foreach v [sqlite3_vfs_list] { puts \"VFS: $v\" }\nexit 0\n";
    let list = |disable| -> Result<Vec<String>, String> {
        Ok(tcl_eval(progs, paths, "vfs-list", script, disable)?
            .lines()
            .filter_map(|l| l.strip_prefix("VFS: ").map(str::to_owned))
            .collect())
    };
    let plain = list(true)?;
    let mut with_ext = list(false)?;
    with_ext.retain(|v| !plain.contains(v));
    // sqlite3_vfs_list answers newest first.
    with_ext.reverse();
    if with_ext.is_empty() {
        return Err("the extension registered no VFS in testfixture".to_owned());
    }
    Ok(with_ext)
}

/// The scripts of `set`'s suite that match its patterns (and every
/// `--script` pattern given), sorted.
fn selection(
    opts: &Opts,
    set: &ScriptSet,
    progs: &Programs,
    paths: &Paths,
) -> Result<Vec<String>, String> {
    let testdir = progs.tree.join("test");
    // permutations.test defines the suites; its `main` runs only when it is
    // the script itself, so this only reads the suite's file list.
    let script = format!(
        "set argv0 [file join {{{}}} selection.tcl]\nset argv {{}}\n\
         source [file join {{{}}} permutations.test]\n\
         array set o $::testspec({})\n\
         foreach f $o(-files) {{ puts \"FILE: [file tail $f]\" }}\nexit 0\n",
        testdir.display(),
        testdir.display(),
        set.suite
    );
    let out = tcl_eval(progs, paths, "selection", &script, true)?;
    let mut files: Vec<String> = out
        .lines()
        .filter_map(|l| l.strip_prefix("FILE: "))
        .filter(|f| set.patterns.iter().any(|p| glob(p, f)) && !set.exclude.contains(f))
        .filter(|f| opts.scripts.is_empty() || opts.scripts.iter().any(|p| glob(p, f)))
        .filter(|f| testdir.join(f).is_file())
        .map(str::to_owned)
        .collect();
    files.sort();
    files.dedup();
    if files.is_empty() {
        return Err(format!(
            "no script of the {} set matched the selection of part {}",
            set.suite, set.dir
        ));
    }
    Ok(files)
}

/// How the suite runs as an unprivileged user: `Some(user)` when the task
/// runs as root and that user can reach testfixture and the scripts.
fn runner_user(progs: &Programs, notes: &mut Vec<String>) -> Option<&'static str> {
    if !is_root() {
        return None;
    }
    let exists = |u: &str| {
        Command::new("id")
            .arg(u)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !exists(TEST_USER) {
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                TEST_USER,
            ])
            .status();
    }
    let reachable = exists(TEST_USER)
        && as_user(TEST_USER, Command::new("test"))
            .arg("-x")
            .arg(&progs.testfixture)
            .arg("-a")
            .arg("-r")
            .arg(progs.tree.join("test/tester.tcl"))
            .status()
            .is_ok_and(|s| s.success());
    if reachable {
        Some(TEST_USER)
    } else {
        notes.push(format!(
            "TCL suite ran as root (could not use the unprivileged user `{TEST_USER}`: \
             missing, or it cannot read the build): permission tests behave the same on \
             every VFS, so the comparison with unix still holds"
        ));
        None
    }
}

/// `cmd` to run as `user` (setpriv keeps the environment).
fn as_user(user: &str, cmd: Command) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={user}"))
        .arg(format!("--regid={user}"))
        .arg("--clear-groups")
        .arg(cmd.get_program())
        .args(cmd.get_args());
    c
}

/// What one script run produced.
#[derive(Clone, Debug, Default)]
pub struct ScriptRun {
    /// From the closing `N errors out of M tests` line.
    pub errors: Option<u32>,
    pub tests: u32,
    pub failed: BTreeSet<String>,
    /// The Tcl error that stopped the script before its end.
    pub aborted: Option<String>,
    pub timed_out: bool,
    pub secs: f64,
}

fn parse(ran: &Ran) -> ScriptRun {
    let mut r = ScriptRun {
        timed_out: ran.timed_out,
        secs: ran.secs,
        ..ScriptRun::default()
    };
    let lines: Vec<&str> = ran.output.lines().collect();
    let mut started = 0u32;
    for l in &lines {
        if let Some(names) = l.strip_prefix("!Failures on these tests:") {
            r.failed.extend(names.split_whitespace().map(str::to_owned));
        } else if let Some(rest) = l.strip_prefix("! ") {
            if let Some(name) = rest.split_whitespace().next()
                && (rest.contains(" expected:") || rest.contains(" got:"))
            {
                r.failed.insert(name.to_owned());
            }
        } else if let Some((name, _)) = l.split_once("...")
            && !name.is_empty()
            && !name.contains(char::is_whitespace)
        {
            started += 1;
        }
        let words: Vec<&str> = l.split_whitespace().collect();
        if words.len() >= 6
            && words[1..4] == ["errors", "out", "of"]
            && words[5] == "tests"
            && let (Ok(e), Ok(t)) = (words[0].parse(), words[4].parse())
        {
            r.errors = Some(e);
            r.tests = t;
        }
    }
    if r.errors.is_none() {
        r.tests = started;
        let msg = lines
            .iter()
            .position(|l| l.starts_with("    while executing"))
            .and_then(|i| i.checked_sub(1))
            .map(|i| lines[i])
            .or_else(|| lines.iter().rev().find(|l| !l.trim().is_empty()).copied())
            .unwrap_or("(no output)");
        // testfixture prefixes the message with its own path.
        let msg = msg
            .split_once(": ")
            .filter(|(p, _)| p.contains("testfixture"))
            .map_or(msg, |(_, m)| m);
        r.aborted = Some(if ran.timed_out {
            "killed at the time limit".to_owned()
        } else {
            msg.to_owned()
        });
    }
    r
}

/// A way a stack's run differs from the baseline's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Diff {
    /// A test that passed (or did not fail) on `unix` failed.
    NewFailure(String),
    /// The script stopped on a Tcl error; `unix` ran it to the end.
    Aborted(String),
    /// The script ran out of time.
    TimedOut,
    /// More errors than failing test names explain (a leak report, say).
    MoreErrors(u32, u32),
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Diff::NewFailure(t) => write!(f, "{t} fails"),
            Diff::Aborted(m) => write!(f, "script aborted: {m}"),
            Diff::TimedOut => write!(f, "killed at the time limit"),
            Diff::MoreErrors(a, b) => write!(f, "{a} errors where unix has {b}"),
        }
    }
}

pub fn diffs(base: &ScriptRun, cur: &ScriptRun) -> Vec<Diff> {
    let mut out = Vec::new();
    if cur.timed_out && !base.timed_out {
        out.push(Diff::TimedOut);
    } else if let Some(m) = &cur.aborted
        && base.aborted.is_none()
    {
        out.push(Diff::Aborted(m.clone()));
    }
    for t in cur.failed.difference(&base.failed) {
        out.push(Diff::NewFailure(t.clone()));
    }
    let new = cur.failed.difference(&base.failed).count() as u32;
    if let (Some(c), Some(b)) = (cur.errors, base.errors)
        && c > b + new
    {
        out.push(Diff::MoreErrors(c, b));
    }
    out
}

/// What testfixture's default VFS is in a run.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// SQLite's `unix` (the extension is not even initialised): the baseline.
    Unix,
    /// SQLite's own `ext/misc/cksumvfs.c` over `unix`, with 8 reserved
    /// bytes requested on every connection (as the project's cksm stacks
    /// do): the reference that tells which differences of a checksumming
    /// stack come with checksums themselves.
    Cksumvfs,
    Stack(Stack),
}

impl Target {
    fn label(self) -> &'static str {
        match self {
            Target::Unix => "unix",
            Target::Cksumvfs => "cksumvfs",
            Target::Stack(s) => s.name,
        }
    }
}

struct Job {
    target: Target,
    script: String,
}

/// Where a run of `job` keeps its files and output.
fn run_dir(set: &ScriptSet, paths: &Paths, job: &Job, attempt: u32) -> std::path::PathBuf {
    let label = job.target.label();
    let stem = job.script.trim_end_matches(".test");
    match attempt {
        0 => paths.work.join(format!("{}/{label}/{stem}", set.dir)),
        n => paths
            .work
            .join(format!("{}/{label}/{stem}.retry{n}", set.dir)),
    }
}

/// The run of a baseline job left by an earlier run of the task
/// (`--reuse-baseline`): one that recorded how it ended (`ended`: its
/// seconds, and `timeout` if it was killed at its limit), or, from before
/// such records, one whose output ends with SQLite's closing line.
fn earlier_run(set: &ScriptSet, paths: &Paths, job: &Job) -> Option<ScriptRun> {
    let dir = run_dir(set, paths, job, 0);
    let out = fs::read(dir.join("output.txt")).ok()?;
    let ended = fs::read_to_string(dir.join("ended")).ok();
    let mut words = ended.as_deref().unwrap_or("").split_whitespace();
    let secs = words.next().and_then(|s| s.parse().ok()).unwrap_or(0.0);
    let r = parse(&Ran {
        code: None,
        timed_out: words.next() == Some("timeout"),
        secs,
        output: String::from_utf8_lossy(&out).into_owned(),
    });
    (ended.is_some() || r.errors.is_some()).then_some(r)
}

/// The time limit of a run of a script that took `unix` `base_secs`.
fn limit_after(set: &ScriptSet, base_secs: f64) -> Duration {
    Duration::from_secs_f64(base_secs * f64::from(SLOWDOWN))
        .clamp(MIN_LIMIT.min(set.limit), set.limit)
}

fn run_script(
    set: &ScriptSet,
    progs: &Programs,
    paths: &Paths,
    user: Option<&str>,
    job: &Job,
    attempt: u32,
    limit: Duration,
) -> ScriptRun {
    let dir = run_dir(set, paths, job, attempt);
    if let Err(e) = fresh_dir(&dir) {
        return ScriptRun {
            aborted: Some(e),
            ..ScriptRun::default()
        };
    }
    if let Some(u) = user {
        let _ = Command::new("chown")
            .arg(format!("{u}:"))
            .arg(&dir)
            .status();
    }
    let mut inner = Command::new(&progs.testfixture);
    inner.arg(progs.tree.join("test").join(&job.script));
    let mut cmd = match user {
        Some(u) => as_user(u, inner),
        None => inner,
    };
    cmd.current_dir(&dir);
    cmd.env_remove("VFSEXT_DEFAULT")
        .env_remove("VFSEXT_DISABLE")
        .env_remove("VFSEXT_CKSUMVFS");
    match job.target {
        Target::Stack(s) => cmd.env("VFSEXT_DEFAULT", s.name),
        Target::Unix => cmd.env("VFSEXT_DISABLE", "1"),
        Target::Cksumvfs => cmd.env("VFSEXT_CKSUMVFS", "1"),
    };
    let log = dir.join("output.txt");
    let r = parse(&run_limited(cmd, &log, limit));
    let how = if r.timed_out { " timeout" } else { "" };
    let _ = fs::write(dir.join("ended"), format!("{:.1}{how}\n", r.secs));
    r
}

pub fn suite(
    opts: &Opts,
    set: &ScriptSet,
    progs: &Programs,
    paths: &Paths,
    stacks: &[Stack],
) -> Result<PartResult, String> {
    let scripts = selection(opts, set, progs, paths)?;
    let mut notes = Vec::new();
    let user = runner_user(progs, &mut notes);
    let reference = stacks.iter().any(|s| known::checksums(s.name));
    step(&format!(
        "TCL suite ({}): {} scripts of {} on unix (baseline){} and {} ({} jobs{})",
        set.dir,
        scripts.len(),
        set.suite,
        if reference {
            ", SQLite's cksumvfs (reference for checksums)"
        } else {
            ""
        },
        stacks.iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
        opts.jobs,
        user.map_or(String::new(), |u| format!(", as user {u}"))
    ));
    // Runs of other stacks from earlier invocations would mislead; the
    // baseline's are kept for --reuse-baseline.
    if let Ok(dirs) = fs::read_dir(paths.work.join(set.dir)) {
        for d in dirs.filter_map(|d| d.ok()) {
            let keep = opts.reuse_baseline
                && [Target::Unix, Target::Cksumvfs]
                    .iter()
                    .any(|t| d.file_name() == t.label());
            if !keep {
                let _ = fs::remove_dir_all(d.path());
            }
        }
    }

    // Phase 1: the baseline, then the cksumvfs reference (whose limits
    // follow the baseline's times).
    let index = |name: &str| {
        scripts
            .iter()
            .position(|s| s == name)
            .expect("a selected script")
    };
    let baseline_jobs = |target: Target| -> Vec<Job> {
        scripts
            .iter()
            .map(|s| Job {
                target,
                script: s.clone(),
            })
            .collect()
    };
    let reuse = |j: &Job| {
        opts.reuse_baseline
            .then(|| earlier_run(set, paths, j))
            .flatten()
    };
    let base: Vec<ScriptRun> = parallel(opts.jobs, &baseline_jobs(Target::Unix), |j| {
        reuse(j).unwrap_or_else(|| run_script(set, progs, paths, user, j, 0, set.limit))
    });
    let base: &[ScriptRun] = &base;
    let cks_runs: Option<Vec<ScriptRun>> = reference.then(|| {
        parallel(opts.jobs, &baseline_jobs(Target::Cksumvfs), |j| {
            reuse(j).unwrap_or_else(|| {
                let limit = limit_after(set, base[index(&j.script)].secs);
                run_script(set, progs, paths, user, j, 0, limit)
            })
        })
    });
    let cks_ref: Option<&[ScriptRun]> = cks_runs.as_deref();
    let bad_base: Vec<String> = scripts
        .iter()
        .zip(base)
        .filter(|(_, r)| r.errors != Some(0))
        .map(|(s, r)| format!("{s} ({})", summary(r)))
        .collect();
    println!(
        "   unix: {} scripts, {} test cases, {} errors{}",
        scripts.len(),
        base.iter().map(|r| r.tests).sum::<u32>(),
        base.iter().map(|r| r.errors.unwrap_or(1)).sum::<u32>(),
        if bad_base.is_empty() {
            String::new()
        } else {
            format!(" (not clean: {})", bad_base.join(", "))
        }
    );
    if !bad_base.is_empty() {
        notes.push(format!(
            "TCL baseline: unix itself does not pass {}; stacks are compared with what it does",
            bad_base.join(", ")
        ));
    }

    // Why a difference of `stack` in `script` is expected, if it is.
    let explain = |stack: &str, script: &str, d: &Diff| -> Option<&'static str> {
        known::tcl(stack, script, d).or_else(|| {
            let r = &cks_ref?[index(script)];
            let same = diffs(&base[index(script)], r).iter().any(|x| match (x, d) {
                (Diff::NewFailure(a), Diff::NewFailure(b)) => a == b,
                (Diff::Aborted(_), Diff::Aborted(_)) => true,
                (Diff::MoreErrors(..), Diff::MoreErrors(..)) => true,
                _ => false,
            });
            (same && known::checksums(stack)).then_some(known::SAME_AS_CKSUMVFS)
        })
    };

    // Phase 2: the stacks, longest scripts first so the workers finish
    // together.
    let mut order: Vec<usize> = (0..scripts.len()).collect();
    order.sort_by(|a, b| base[*b].secs.total_cmp(&base[*a].secs));
    let jobs: Vec<Job> = stacks
        .iter()
        .flat_map(|s| {
            order.iter().map(|&i| Job {
                target: Target::Stack(*s),
                script: scripts[i].clone(),
            })
        })
        .collect();
    let results: Vec<ScriptRun> = parallel(opts.jobs, &jobs, |j| {
        let b = &base[index(&j.script)];
        let name = j.target.label();
        let limit = limit_after(set, b.secs);
        let first = run_script(set, progs, paths, user, j, 0, limit);
        let unexplained = |r: &ScriptRun| {
            diffs(b, r)
                .iter()
                .filter(|d| explain(name, &j.script, d).is_none())
                .count()
        };
        if !set.retry || first.timed_out || unexplained(&first) == 0 {
            return first;
        }
        // Once more: timing-sensitive scripts (busy timeouts, several
        // processes) may fail by chance on a loaded machine.
        let second = run_script(set, progs, paths, user, j, 1, limit);
        if unexplained(&second) < unexplained(&first) {
            second
        } else {
            first
        }
    });
    let result = |stack: &str, script: &str| -> &ScriptRun {
        let k = jobs
            .iter()
            .position(|j| j.target.label() == stack && j.script == script)
            .expect("every stack ran every script");
        &results[k]
    };

    // Report per script and per stack.
    let mut checks = Vec::new();
    let mut rows = Vec::new();
    let mut table = String::new();
    let width = scripts.iter().map(String::len).max().unwrap_or(10) + 2;
    let _ = write!(table, "   {:<width$}{:<15}", "script", "unix");
    if reference {
        let _ = write!(table, "{:<15}", "cksumvfs");
    }
    for s in stacks {
        let _ = write!(table, "{:<26}", s.name);
    }
    table.push('\n');
    let mut per_stack: BTreeMap<&str, (u32, u32, u32, u32, u32)> = BTreeMap::new();
    let mut reasons: BTreeMap<(&str, &'static str), Vec<String>> = BTreeMap::new();
    for (i, script) in scripts.iter().enumerate() {
        let b = &base[i];
        let _ = write!(table, "   {script:<width$}{:<15}", summary(b));
        rows.push(run_json("unix", script, b, &[]));
        if let Some(c) = cks_ref {
            let ds: Vec<(Diff, Option<&'static str>)> =
                diffs(b, &c[i]).into_iter().map(|d| (d, None)).collect();
            let _ = write!(table, "{:<15}", summary(&c[i]));
            rows.push(run_json("cksumvfs", script, &c[i], &ds));
        }
        for s in stacks {
            let r = result(s.name, script);
            let explained: Vec<(Diff, Option<&'static str>)> = diffs(b, r)
                .into_iter()
                .map(|d| {
                    let why = explain(s.name, script, &d);
                    (d, why)
                })
                .collect();
            let n = explained.len();
            let open = explained.iter().filter(|(_, e)| e.is_none()).count() as u32;
            let cell = match (n, open) {
                (0, _) => summary(r),
                (n, 0) => format!("{} ({n} expl.)", summary(r)),
                (n, o) => format!("{} ({o}/{n} UNEXPL.)", summary(r)),
            };
            let _ = write!(table, "{cell:<26}");
            let e = per_stack.entry(s.name).or_default();
            e.0 += 1;
            e.1 += r.tests;
            e.2 += r.errors.unwrap_or(0);
            e.3 += n as u32;
            e.4 += open;
            for (d, why) in &explained {
                match why {
                    Some(w) => reasons.entry((s.name, w)).or_default().push(match d {
                        Diff::NewFailure(t) => t.clone(),
                        other => format!("{script}: {other}"),
                    }),
                    None => notes.push(format!("TCL {} {script}: UNEXPLAINED: {d}", s.name)),
                }
            }
            checks.push(Check {
                part: set.part,
                name: format!(
                    "TCL {} {script}: no unexplained difference from unix",
                    s.name
                ),
                passed: open == 0,
            });
            rows.push(run_json(s.name, script, r, &explained));
        }
        table.push('\n');
    }
    step(&format!(
        "TCL suite ({}) per script (errors/tests; differences from unix)",
        set.dir
    ));
    print!("{table}");
    let totals = |label: &str, runs: &[ScriptRun]| {
        println!(
            "   {label}: {} scripts, {} test cases, {} errors, {} aborted or timed out, {:.0} s",
            runs.len(),
            runs.iter().map(|r| r.tests).sum::<u32>(),
            runs.iter().map(|r| r.errors.unwrap_or(0)).sum::<u32>(),
            runs.iter().filter(|r| r.errors.is_none()).count(),
            runs.iter().map(|r| r.secs).sum::<f64>()
        );
    };
    totals("unix", base);
    if let Some(c) = cks_ref {
        totals("cksumvfs", c);
    }
    for s in stacks {
        let runs: Vec<ScriptRun> = scripts
            .iter()
            .map(|sc| result(s.name, sc).clone())
            .collect();
        totals(s.name, &runs);
    }
    for (name, (n, tests, errors, ds, open)) in &per_stack {
        println!(
            "   {name}: {n} scripts, {tests} test cases, {errors} errors, {ds} differences from unix, {open} unexplained"
        );
    }
    for ((stack, why), tests) in &reasons {
        let shown: Vec<&str> = tests.iter().take(5).map(String::as_str).collect();
        println!(
            "   {stack}: {} explained: {why} ({}{})",
            tests.len(),
            shown.join(" "),
            if tests.len() > shown.len() {
                " …"
            } else {
                ""
            }
        );
    }
    Ok(PartResult {
        checks,
        json: format!(
            "{{\"scripts\": {}, \"runs\": [\n    {}\n  ]}}",
            scripts.len(),
            rows.join(",\n    ")
        ),
        notes,
    })
}

fn summary(r: &ScriptRun) -> String {
    match (r.errors, &r.aborted) {
        (Some(e), _) => format!("{e}/{}", r.tests),
        (None, _) if r.timed_out => format!("TIMEOUT/{}", r.tests),
        (None, _) => format!("ABORT/{}", r.tests),
    }
}

fn run_json(
    stack: &str,
    script: &str,
    r: &ScriptRun,
    diffs: &[(Diff, Option<&'static str>)],
) -> String {
    let ds: Vec<String> = diffs
        .iter()
        .map(|(d, why)| {
            format!(
                "{{\"difference\": {}, \"explanation\": {}}}",
                json_str(&d.to_string()),
                why.map_or("null".to_owned(), json_str)
            )
        })
        .collect();
    format!(
        "{{\"stack\": {}, \"script\": {}, \"tests\": {}, \"errors\": {}, \"aborted\": {}, \"seconds\": {:.1}, \"differences\": [{}]}}",
        json_str(stack),
        json_str(script),
        r.tests,
        r.errors.map_or("null".to_owned(), |e| e.to_string()),
        r.aborted.as_deref().map_or("null".to_owned(), json_str),
        r.secs,
        ds.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ran(output: &str, code: Option<i32>) -> Ran {
        Ran {
            code,
            timed_out: false,
            secs: 0.0,
            output: output.to_owned(),
        }
    }

    #[test]
    fn glob_matches_stars_only() {
        assert!(glob("wal*", "wal2.test"));
        assert!(glob("mmap1-*.5", "mmap1-1.2.1.5"));
        assert!(!glob("mmap1-*.5", "mmap1-1.2.1.4"));
        assert!(glob("io.test", "io.test"));
        assert!(!glob("io.test", "ioerr.test"));
    }

    #[test]
    fn parse_reads_the_closing_line_and_failures() {
        let r = parse(&ran(
            "a-1.1... Ok\na-1.2...\n! a-1.2 expected: [1]\n! a-1.2 got:      [2]\n\
             1 errors out of 2 tests on vm Linux 64-bit little-endian\n\
             !Failures on these tests: a-1.2\n",
            Some(1),
        ));
        assert_eq!(r.errors, Some(1));
        assert_eq!(r.tests, 2);
        assert_eq!(r.failed, BTreeSet::from(["a-1.2".to_owned()]));
        assert_eq!(r.aborted, None);
    }

    #[test]
    fn parse_reports_an_aborted_script() {
        let r = parse(&ran(
            "b-1.1... Ok\n/x/testfixture: VFS does not support xSetSystemCall\n    while executing\n",
            Some(1),
        ));
        assert_eq!(r.errors, None);
        assert_eq!(r.tests, 1);
        assert_eq!(
            r.aborted.as_deref(),
            Some("VFS does not support xSetSystemCall")
        );
    }

    #[test]
    fn diffs_are_relative_to_the_baseline() {
        let base = parse(&ran(
            "1 errors out of 3 tests\n!Failures on these tests: c-1\n",
            Some(1),
        ));
        let cur = parse(&ran(
            "2 errors out of 3 tests\n!Failures on these tests: c-1 c-2\n",
            Some(1),
        ));
        assert_eq!(diffs(&base, &cur), vec![Diff::NewFailure("c-2".to_owned())]);
        assert!(diffs(&base, &base).is_empty());
        let aborted = parse(&ran("oops\n    while executing\n", Some(1)));
        assert_eq!(
            diffs(&base, &aborted),
            vec![Diff::Aborted("oops".to_owned())]
        );
    }

    #[test]
    fn known_differences_match_precisely() {
        let t = |s: &str| Diff::NewFailure(s.to_owned());
        // Memory mapping differs only under a page transform.
        assert!(known::tcl("native", "mmap1.test", &t("mmap1-1.2.1.5")).is_none());
        assert!(known::tcl("cksm", "mmap1.test", &t("mmap1-1.2.1.5")).is_some());
        assert!(known::tcl("native", "symlink.test", &t("symlink-1.1.2")).is_none());
        assert!(known::tcl("native", "corrupt2.test", &t("corrupt2-1.2")).is_none());
        assert!(known::tcl("cksm", "corrupt2.test", &t("corrupt2-1.2")).is_some());
        assert!(known::tcl("native", "pager1.test", &Diff::TimedOut).is_none());
        assert!(known::mptest("crypto", "config02", "DELETE", 4).is_some());
        assert!(known::mptest("crypto", "config02", "DELETE", 5).is_none());
        assert!(known::mptest("native", "config02", "DELETE", 4).is_none());
        assert!(known::mptest("cksm", "config02", "DELETE", 4).is_none());
        let raw_edit = t("pagerfault-22-ioerr-transient.1");
        assert!(known::tcl("cksm", "pagerfault.test", &raw_edit).is_some());
        assert!(known::tcl("native", "pagerfault.test", &raw_edit).is_none());
        assert!(known::tcl("cksm", "pagerfault.test", &t("pagerfault-21.1")).is_none());
    }
}
