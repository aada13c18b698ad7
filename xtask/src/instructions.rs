//! `cargo xtask bench-instructions`: instruction counts per operation of
//! the bench's single-connection workloads, under valgrind's callgrind.
//!
//! Times on a shared 2-core machine move by tens of percent from one run
//! to the next; the number of instructions a workload executes does not
//! (it changes only with the code, or with data-dependent paths). So a
//! change to a hot path is judged by its instruction count first and its
//! time second. Instructions are not time: cache misses, contention and
//! `fsync` do not show, which is why `cargo xtask bench` remains the
//! measure of speed.
//!
//! How: `vfs-bench --instructions TARGET` runs each workload step inside
//! `vfs_bench::instr::instr_measured`; callgrind collects inside that
//! function only and writes one profile per call, which this command reads
//! (`totals:`) and divides by the step's operations. The profiles stay in
//! `target/bench/callgrind/` for `callgrind_annotate`.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

/// Measured by default: the baselines, the stacks with targets, and mvcc.
const DEFAULT_TARGETS: [&str; 8] = [
    "sqlite-memdb",
    "memdb",
    "cksm(memdb)",
    "crypto(memdb)",
    "crypto-ring(memdb)",
    "mvcc",
    "sqlite-unix",
    "native",
];

/// The function callgrind collects in.
const MEASURED: &str = "vfs_bench::instr::instr_measured";

struct Options {
    targets: Vec<String>,
    install: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        targets: DEFAULT_TARGETS.iter().map(|s| (*s).to_owned()).collect(),
        install: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--targets" => {
                o.targets = it
                    .next()
                    .ok_or("--targets takes a comma-separated list")?
                    .split(',')
                    .map(str::to_owned)
                    .collect();
            }
            "--install-valgrind" => o.install = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(o)
}

fn valgrind_present() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `apt-get install valgrind`, through sudo unless already root.
fn install_valgrind() -> Result<(), String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let mut cmd = if root {
        Command::new("apt-get")
    } else {
        let mut c = Command::new("sudo");
        c.arg("apt-get");
        c
    };
    eprintln!("xtask bench-instructions: installing valgrind with apt-get");
    let status = cmd
        .args(["install", "-y", "--no-install-recommends", "valgrind"])
        .status()
        .map_err(|e| format!("could not run apt-get: {e}"))?;
    if !status.success() {
        return Err(format!("apt-get install valgrind failed ({status})"));
    }
    Ok(())
}

/// One target's result: its family and (step, ops, instructions).
struct Counted {
    family: String,
    steps: Vec<(String, u64, u64)>,
}

fn totals(path: &Path) -> Result<u64, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("totals:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| format!("{}: no totals line", path.display()))
}

fn count(bin: &Path, dir: &Path, target: &str) -> Result<Counted, String> {
    let file: String = target
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let out_file = dir.join(format!("{file}.out"));
    for entry in std::fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(&format!("{file}.out"))
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    let output = Command::new("nice")
        .arg("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg("--collect-atstart=no")
        .arg(format!("--toggle-collect={MEASURED}"))
        .arg(format!("--dump-after={MEASURED}"))
        .arg(bin)
        .args(["--instructions", target])
        .output()
        .map_err(|e| format!("could not run valgrind: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{target}: vfs-bench under callgrind failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
                .lines()
                .filter(|l| !l.starts_with("=="))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut family = String::new();
    let mut steps = Vec::new();
    for line in stdout.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["family", f] => family = (*f).to_owned(),
            ["step", name, ops] => {
                let ops = ops.parse().map_err(|_| format!("bad line {line:?}"))?;
                let k = steps.len() + 1;
                let dump = PathBuf::from(format!("{}.{k}", out_file.display()));
                steps.push(((*name).to_owned(), ops, totals(&dump)?));
            }
            _ => {}
        }
    }
    if steps.is_empty() {
        return Err(format!("{target}: vfs-bench reported no steps"));
    }
    Ok(Counted { family, steps })
}

fn json_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Runs the command.
pub fn run(args: &[String]) -> ExitCode {
    match run_inner(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask bench-instructions: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &[String]) -> Result<(), String> {
    let opts = parse(args)?;
    if !valgrind_present() {
        if !opts.install {
            return Err(
                "valgrind is not installed. This command counts instructions under \
                 valgrind's callgrind: install it (Debian/Ubuntu: `sudo apt-get install \
                 valgrind`) or rerun with --install-valgrind to have it installed with apt-get"
                    .to_owned(),
            );
        }
        install_valgrind()?;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("xtask has no parent directory")?
        .to_owned();
    eprintln!("xtask bench-instructions: building vfs-bench (release)");
    let status = crate::cargo()
        .args(["build", "--release", "--quiet", "-p", "vfs-bench"])
        .current_dir(&root)
        .status()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    if !status.success() {
        return Err(format!("building vfs-bench failed ({status})"));
    }
    let bin = root.join("target/release/vfs-bench");
    let dir = root.join("target/bench/callgrind");
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let mut results = Vec::new();
    for t in &opts.targets {
        eprintln!("xtask bench-instructions: {t}");
        results.push((t.clone(), count(&bin, &dir, t)?));
    }
    print_table(&results);
    let json = to_json(&results);
    let path = root.join("target/bench/instructions.json");
    std::fs::write(&path, json).map_err(|e| e.to_string())?;
    println!(
        "\nwrote {}; profiles in {} (callgrind_annotate FILE.N)",
        path.display(),
        dir.display()
    );
    Ok(())
}

fn per_op(steps: &[(String, u64, u64)], step: &str) -> Option<f64> {
    steps
        .iter()
        .find(|(s, _, _)| s == step)
        .map(|(_, ops, ins)| *ins as f64 / (*ops).max(1) as f64)
}

fn baseline(family: &str) -> &'static str {
    if family == "disk" {
        "sqlite-unix"
    } else {
        "sqlite-memdb"
    }
}

fn print_table(results: &[(String, Counted)]) {
    println!(
        "\ninstructions per operation (callgrind, deterministic), and the ratio to SQLite's own VFS of the family"
    );
    let steps: Vec<&str> = results
        .first()
        .map(|(_, c)| c.steps.iter().map(|(s, _, _)| s.as_str()).collect())
        .unwrap_or_default();
    print!("  {:<16}", "workload");
    for (t, _) in results {
        print!(" {t:>20}");
    }
    println!();
    for step in steps {
        print!("  {step:<16}");
        for (_, c) in results {
            let mine = per_op(&c.steps, step);
            let base = results
                .iter()
                .find(|(t, _)| t == baseline(&c.family))
                .and_then(|(_, b)| per_op(&b.steps, step));
            let cell = match (mine, base) {
                (Some(m), Some(b)) if b > 0.0 => format!("{m:.0} {:.3}×", m / b),
                (Some(m), _) => format!("{m:.0}"),
                _ => "-".to_owned(),
            };
            print!(" {cell:>20}");
        }
        println!();
    }
}

fn to_json(results: &[(String, Counted)]) -> String {
    let targets: Vec<String> = results
        .iter()
        .map(|(t, c)| {
            let steps: Vec<String> = c
                .steps
                .iter()
                .map(|(s, ops, ins)| {
                    format!(
                        "{{\"step\": \"{}\", \"ops\": {ops}, \"instructions\": {ins}, \"per_op\": {:.1}}}",
                        json_escape(s),
                        *ins as f64 / (*ops).max(1) as f64
                    )
                })
                .collect();
            format!(
                "  {{\"target\": \"{}\", \"family\": \"{}\", \"steps\": [\n    {}\n  ]}}",
                json_escape(t),
                json_escape(&c.family),
                steps.join(",\n    ")
            )
        })
        .collect();
    format!("[\n{}\n]\n", targets.join(",\n"))
}
