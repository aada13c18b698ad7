//! speedtest1 and mptest.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::build::Programs;
use super::proc::{Ran, parallel, run_limited};
use super::{Check, Opts, Part, Paths, Stack, Storage, fresh_dir, json_str, known, step};

/// What a part hands back to the summary.
pub struct PartResult {
    pub checks: Vec<Check>,
    pub json: String,
    pub notes: Vec<String>,
}

const JOURNALS: &[&str] = &["delete", "wal"];

/// One speedtest1 run: `stack` `None` is the `unix` baseline.
struct SpeedRun {
    stack: Option<Stack>,
    journal: &'static str,
}

struct SpeedOut {
    ran: Ran,
    hash: Option<String>,
    secs: Option<f64>,
}

/// The database name speedtest1 gets for `stack` in `dir`.
fn db_name(stack: Option<&Stack>, dir: &Path, base: &str) -> String {
    match stack {
        Some(s) if s.storage == Storage::Memory => {
            let name = format!("/{base}");
            if s.params.is_empty() {
                name
            } else {
                format!("file:{name}?{}", s.params)
            }
        }
        Some(s) if !s.params.is_empty() => {
            format!("file:{}?{}", dir.join(base).display(), s.params)
        }
        _ => dir.join(base).display().to_string(),
    }
}

pub fn speedtest1(opts: &Opts, progs: &Programs, paths: &Paths, stacks: &[Stack]) -> PartResult {
    let size = if opts.quick { 25 } else { 100 };
    step(&format!(
        "speedtest1 --verify --size {size} on unix (reference) and {} stacks, journal modes {}",
        stacks.len(),
        JOURNALS.join(", ")
    ));
    let mut runs = Vec::new();
    for journal in JOURNALS {
        runs.push(SpeedRun {
            stack: None,
            journal,
        });
        for s in stacks {
            runs.push(SpeedRun {
                stack: Some(*s),
                journal,
            });
        }
    }
    // One at a time: these are also the timings of the bench report.
    let outs: Vec<SpeedOut> = parallel(1, &runs, |r| {
        let label = r.stack.map_or("unix", |s| s.name);
        let dir = paths.work.join(format!("speedtest1/{label}-{}", r.journal));
        if let Err(e) = fresh_dir(&dir) {
            return SpeedOut {
                ran: Ran {
                    code: None,
                    timed_out: false,
                    secs: 0.0,
                    output: e,
                },
                hash: None,
                secs: None,
            };
        }
        let mut cmd = Command::new(&progs.speedtest1);
        cmd.current_dir(&dir).args([
            "--verify",
            "--size",
            &size.to_string(),
            "--journal",
            r.journal,
        ]);
        match r.stack {
            Some(s) => {
                cmd.args(["--vfs", s.name]).env_remove("VFSEXT_DISABLE");
            }
            None => {
                cmd.args(["--vfs", "unix"]).env("VFSEXT_DISABLE", "1");
            }
        }
        cmd.env_remove("VFSEXT_DEFAULT")
            .arg(db_name(r.stack.as_ref(), &dir, "speedtest1.db"));
        let ran = run_limited(cmd, &dir.join("output.txt"), Duration::from_secs(600));
        let hash = ran
            .output
            .lines()
            .find_map(|l| l.strip_prefix("Verification Hash:"))
            .map(|h| h.trim().to_owned());
        let secs = ran.output.lines().find_map(|l| {
            let l = l.trim();
            l.strip_prefix("TOTAL")
                .map(|rest| rest.trim_start_matches('.').trim().trim_end_matches('s'))
                .and_then(|v| v.parse::<f64>().ok())
        });
        let label = r.stack.map_or("unix", |s| s.name);
        println!(
            "   {label:<12} {:<7} {} {}",
            r.journal,
            secs.map_or("   -   ".to_owned(), |s| format!("{s:7.3}s")),
            hash.as_deref().unwrap_or("(no hash)")
        );
        SpeedOut { ran, hash, secs }
    });

    let mut checks = Vec::new();
    let mut notes = Vec::new();
    let mut rows = Vec::new();
    let reference = |journal: &str| {
        runs.iter()
            .zip(&outs)
            .find(|(r, _)| r.stack.is_none() && r.journal == journal)
            .and_then(|(_, o)| if o.ran.ok() { o.hash.clone() } else { None })
    };
    for (r, o) in runs.iter().zip(&outs) {
        let label = r.stack.map_or("unix", |s| s.name);
        let want = reference(r.journal);
        let matched = o.ran.ok() && o.hash.is_some() && o.hash == want;
        let refused = r
            .stack
            .filter(|_| !o.ran.ok())
            .and_then(|s| known::speedtest1(s.name, r.journal, &o.ran.output));
        if let (Some(s), Some(why)) = (r.stack, refused) {
            notes.push(format!(
                "speedtest1 {} {}: not applicable: {why}",
                s.name, r.journal
            ));
        } else if let Some(s) = r.stack {
            if !matched {
                let why = if !o.ran.ok() {
                    let out = &o.ran.output;
                    let line = out
                        .lines()
                        .find(|l| l.contains("error") || l.contains("Error"))
                        .or_else(|| out.lines().rev().find(|l| !l.trim().is_empty()))
                        .unwrap_or("");
                    format!("{}: {}", o.ran.describe(), line.trim())
                } else {
                    format!(
                        "hash {} differs from unix's {}",
                        o.hash.as_deref().unwrap_or("(none)"),
                        want.as_deref().unwrap_or("(none)")
                    )
                };
                notes.push(format!("speedtest1 {} {}: {why}", s.name, r.journal));
            }
            checks.push(Check {
                part: Part::Speedtest1,
                name: format!(
                    "speedtest1 {} journal={}: verify hash equals unix's",
                    s.name, r.journal
                ),
                passed: matched,
            });
        } else if !o.ran.ok() || o.hash.is_none() {
            checks.push(Check {
                part: Part::Speedtest1,
                name: format!("speedtest1 unix journal={} (reference) ran", r.journal),
                passed: false,
            });
        }
        let mut row = String::new();
        let _ = write!(
            row,
            "{{\"stack\": {}, \"journal\": {}, \"size\": {size}, \"seconds\": {}, \"hash\": {}, \"matches_unix\": {}, \"not_applicable\": {}}}",
            json_str(label),
            json_str(r.journal),
            o.secs.map_or("null".to_owned(), |s| format!("{s:.3}")),
            o.hash.as_deref().map_or("null".to_owned(), json_str),
            if r.stack.is_some() && refused.is_none() {
                matched.to_string()
            } else {
                "null".to_owned()
            },
            refused.map_or("null".to_owned(), json_str)
        );
        rows.push(row);
    }
    PartResult {
        checks,
        json: format!("[\n    {}\n  ]", rows.join(",\n    ")),
        notes,
    }
}

/// mptest scripts and the journal modes each is run in.
fn mptest_matrix(quick: bool) -> Vec<(&'static str, &'static str)> {
    if quick {
        return vec![("crash01", "DELETE"), ("crash01", "WAL")];
    }
    let mut m = Vec::new();
    for script in ["crash01", "multiwrite01", "config02"] {
        for mode in ["DELETE", "WAL", "PERSIST", "TRUNCATE"] {
            // config02 changes the page size with VACUUM, which WAL
            // forbids: `unix` reports errors there too.
            if script == "config02" && mode == "WAL" {
                continue;
            }
            m.push((script, mode));
        }
    }
    m
}

struct MpRun {
    stack: Option<Stack>,
    script: &'static str,
    mode: &'static str,
}

pub fn mptest(opts: &Opts, progs: &Programs, paths: &Paths, stacks: &[Stack]) -> PartResult {
    let matrix = mptest_matrix(opts.quick);
    let repeat = if opts.quick { 1 } else { 2 };
    step(&format!(
        "mptest ({} script/mode pairs, --repeat {repeat} but config02 once) on unix and {}",
        matrix.len(),
        stacks.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
    ));
    let mut runs = Vec::new();
    for (script, mode) in &matrix {
        runs.push(MpRun {
            stack: None,
            script,
            mode,
        });
        for s in stacks {
            runs.push(MpRun {
                stack: Some(*s),
                script,
                mode,
            });
        }
    }
    let rep = repeat.to_string();
    let outs: Vec<(Ran, Option<(u32, u32)>)> = parallel(opts.jobs, &runs, |r| {
        let label = r.stack.map_or("unix", |s| s.name);
        let dir = paths
            .work
            .join(format!("mptest/{label}-{}-{}", r.script, r.mode));
        if let Err(e) = fresh_dir(&dir) {
            return (
                Ran {
                    code: None,
                    timed_out: false,
                    secs: 0.0,
                    output: e,
                },
                None,
            );
        }
        let mut cmd = Command::new(&progs.mptest);
        cmd.current_dir(&dir)
            .arg(db_name(r.stack.as_ref(), &dir, "mptest.db"))
            .arg(progs.tree.join(format!("mptest/{}.test", r.script)))
            .args(["--journalmode", r.mode])
            // config02's page-size steps only work on a fresh database.
            .args(["--repeat", if r.script == "config02" { "1" } else { &rep }])
            .args(["--quiet", "--errlog", "errors.txt"])
            .env_remove("VFSEXT_DEFAULT");
        match r.stack {
            Some(s) => {
                cmd.args(["--vfs", s.name]).env_remove("VFSEXT_DISABLE");
            }
            None => {
                cmd.env("VFSEXT_DISABLE", "1");
            }
        }
        let ran = run_limited(cmd, &dir.join("output.txt"), Duration::from_secs(600));
        let summary = ran.output.lines().find_map(|l| {
            let rest = l.strip_prefix("Summary: ")?;
            let mut w = rest.split_whitespace();
            let errors = w.next()?.parse().ok()?;
            let tests = w.nth(3)?.parse().ok()?;
            Some((errors, tests))
        });
        println!(
            "   {label:<12} {:<13} {:<9} {} ({:.1} s)",
            r.script,
            r.mode,
            summary.map_or_else(
                || format!("no summary, {}", ran.describe()),
                |(e, t)| format!("{e} errors out of {t} tests")
            ),
            ran.secs
        );
        (ran, summary)
    });

    let mut checks = Vec::new();
    let mut notes = Vec::new();
    let mut rows = Vec::new();
    for (r, (ran, summary)) in runs.iter().zip(&outs) {
        let label = r.stack.map_or("unix", |s| s.name);
        let errors = summary.map(|(e, _)| e);
        let clean = errors == Some(0) && !ran.timed_out;
        let explained = r
            .stack
            .zip(errors)
            .and_then(|(s, e)| known::mptest(s.name, r.script, r.mode, e));
        let passed = clean || (explained.is_some() && summary.is_some() && !ran.timed_out);
        if !clean {
            notes.push(format!(
                "mptest {label} {} {}: {}{}",
                r.script,
                r.mode,
                summary.map_or_else(
                    || format!("no summary ({})", ran.describe()),
                    |(e, t)| format!("{e} errors out of {t} tests")
                ),
                match explained {
                    Some(reason) => format!(" — explained: {reason}"),
                    None => format!(
                        " — see {}",
                        paths
                            .work
                            .join(format!("mptest/{label}-{}-{}/errors.txt", r.script, r.mode))
                            .display()
                    ),
                }
            ));
        }
        checks.push(Check {
            part: Part::Mptest,
            name: format!("mptest {label} {} {}", r.script, r.mode),
            passed,
        });
        rows.push(format!(
            "{{\"stack\": {}, \"script\": {}, \"journal\": {}, \"errors\": {}, \"tests\": {}, \"seconds\": {:.1}, \"explained\": {}}}",
            json_str(label),
            json_str(r.script),
            json_str(r.mode),
            errors.map_or("null".to_owned(), |e| e.to_string()),
            summary.map_or("null".to_owned(), |(_, t)| t.to_string()),
            ran.secs,
            explained.map_or("null".to_owned(), json_str)
        ));
    }
    PartResult {
        checks,
        json: format!("[\n    {}\n  ]", rows.join(",\n    ")),
        notes,
    }
}
