//! The benchmark runner behind `cargo xtask bench`: the same workloads on
//! SQLite's own VFSes and on every backend and stack of this workspace, in
//! one run, reported as ratios to SQLite's own with intervals over paired
//! rounds, plus a size sweep, memory per database byte and allocation
//! counts.
#![forbid(unsafe_code)]

mod allocs;
mod instr;
mod memory;
mod peers;
mod report;
mod rounds;
mod stats;
mod sweep;
mod targets;
mod workloads;

use std::thread;
use std::time::Instant;

use report::Report;
use rounds::Res;
use targets::Target;
use workloads::Scale;

/// Counts allocations for [`allocs`] (only inside
/// `vfs_core::alloc_count::count_allocations`, on the calling thread).
#[global_allocator]
static ALLOCATOR: vfs_core::alloc_count::CountingAllocator =
    vfs_core::alloc_count::CountingAllocator;

const HELP: &str = "vfs-bench [--quick] [--reps N] [--filter NAME] [--only PARTS] [--out DIR] [--no-curves] [--sizes N,N,..] [--peers-bin PATH]
Runs every workload on every target in rounds; writes DIR/results.json,
DIR/chart.svg and DIR/curves.svg.
  --quick       smoke scale (CI), at most 2 rounds unless --reps says more
  --reps N      rounds (default 6): the intervals narrow with more
  --filter NAME only targets whose name contains NAME (and the baselines they need)
  --only PARTS  only these parts, comma-separated: single (the single-connection
                steps), mmap (reads with and without PRAGMA mmap_size), readers,
                extras, sweep, memory, allocs (default: all)
  --no-curves   skip the size sweep and the memory probes
  --sizes LIST  database sizes of the sweep, in rows (default 10000,100000,1000000)
  --peers-bin   also run that bench-peers binary in every round (cargo xtask bench --peers)
Internal modes: --memory-probe STORE ROWS (one memory figure, used by the
run itself); --instructions TARGET (the steps for callgrind, used by
cargo xtask bench-instructions).";

struct Options {
    quick: bool,
    reps: usize,
    filter: Option<String>,
    out_dir: std::path::PathBuf,
    curves: bool,
    sizes: Option<Vec<i64>>,
    /// The peer runner (`bench-peers`), run once per round.
    peers_bin: Option<std::path::PathBuf>,
    /// The parts to run (`--only`); `None`: all.
    only: Option<Vec<String>>,
}

/// The parts `--only` may name.
const PARTS: [&str; 7] = [
    "single", "mmap", "readers", "extras", "sweep", "memory", "allocs",
];

impl Options {
    fn runs(&self, part: &str) -> bool {
        self.only
            .as_ref()
            .is_none_or(|parts| parts.iter().any(|p| p == part))
    }
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        reps: 6,
        filter: None,
        out_dir: std::path::PathBuf::from("target/bench"),
        curves: true,
        sizes: None,
        peers_bin: None,
        only: None,
    };
    let mut reps_given = false;
    let mut args = args.iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--reps" => {
                o.reps = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .ok_or("--reps takes a positive number")?;
                reps_given = true;
            }
            "--filter" => {
                o.filter = Some(
                    args.next()
                        .ok_or("--filter takes a target name part")?
                        .clone(),
                )
            }
            "--out" => o.out_dir = args.next().ok_or("--out takes a directory")?.into(),
            "--no-curves" => o.curves = false,
            "--only" => {
                let list = args.next().ok_or("--only takes a list of parts")?;
                let parts: Vec<String> = list.split(',').map(str::to_owned).collect();
                if let Some(bad) = parts.iter().find(|p| !PARTS.contains(&p.as_str())) {
                    return Err(format!(
                        "--only: unknown part {bad:?} (parts: {})",
                        PARTS.join(", ")
                    ));
                }
                o.only = Some(parts);
            }
            "--sizes" => {
                let list = args.next().ok_or("--sizes takes a list of row counts")?;
                let sizes: Result<Vec<i64>, _> = list.split(',').map(str::parse).collect();
                o.sizes = Some(
                    sizes
                        .ok()
                        .filter(|s| !s.is_empty() && s.iter().all(|n| *n > 0))
                        .ok_or("--sizes takes positive row counts separated by commas")?,
                );
            }
            "--peers-bin" => {
                o.peers_bin = Some(
                    args.next()
                        .ok_or("--peers-bin takes the path of the bench-peers binary")?
                        .into(),
                )
            }
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.quick && !reps_given {
        o.reps = 2;
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--memory-probe") => match (args.get(1), args.get(2).and_then(|r| r.parse().ok())) {
            (Some(store), Some(rows)) => memory::child(store, rows),
            _ => Err("--memory-probe takes a store and a row count".into()),
        },
        Some("--instructions") => match args.get(1) {
            Some(target) => instr::run(target),
            None => Err("--instructions takes a target name".into()),
        },
        _ => match parse_args(&args) {
            Ok(o) => run(&o),
            Err(e) => {
                eprintln!("vfs-bench: {e}\n\n{HELP}");
                std::process::exit(2);
            }
        },
    };
    if let Err(e) = result {
        eprintln!("vfs-bench: {e}");
        std::process::exit(1);
    }
}

fn run(opts: &Options) -> Res<()> {
    let scale = if opts.quick {
        Scale::QUICK
    } else {
        Scale::FULL
    };
    let sizes: Vec<i64> = match (&opts.sizes, opts.quick) {
        (Some(s), _) => s.clone(),
        (None, true) => sweep::QUICK_SIZES.to_vec(),
        (None, false) => sweep::FULL_SIZES.to_vec(),
    };
    let tmp = tempfile::tempdir()?;
    let all = targets::all(tmp.path())?;
    let matches = |t: &Target| {
        opts.filter
            .as_ref()
            .is_none_or(|f| t.name.contains(f.as_str()))
    };
    // A baseline runs when it matches or when a chosen target of its
    // family needs it.
    let chosen: Vec<&Target> = all
        .iter()
        .filter(|t| {
            matches(t)
                || t.name == t.family.baseline()
                    && all.iter().any(|o| o.family == t.family && matches(o))
        })
        .collect();
    let mut report = Report::new(opts.quick, opts.reps, machine_description());
    report.set_order(chosen.iter().map(|t| t.name.clone()).collect());
    for t in &all {
        if t.name == t.family.baseline() && t.concurrent && !t.wal {
            for w in [
                "readers_1_with_writer",
                "readers_2_with_writer",
                "readers_4_with_writer",
            ] {
                report.mark_incomparable(
                    w,
                    targets::Family::Memory.baseline(),
                    "has no WAL: its readers wait for the writer (see the reader scaling)",
                );
            }
        }
    }
    let started = Instant::now();
    for round in 0..opts.reps {
        eprint!("round {}/{}:", round + 1, opts.reps);
        if opts.runs("single") {
            eprint!(" single");
            rounds::single_connection(&chosen, &scale, round, &mut report)?;
        }
        if opts.runs("mmap") {
            eprint!(" mmap");
            rounds::mapped_reads(&chosen, &scale, round, &mut report)?;
        }
        if opts.runs("readers") {
            eprint!(" readers");
            rounds::concurrent(&chosen, &scale, round, &mut report)?;
        }
        if opts.runs("extras") {
            eprint!(" extras");
            rounds::extras(&chosen, &scale, round, &mut report)?;
        }
        if opts.curves && opts.runs("sweep") {
            eprint!(" sweep");
            sweep::round(&chosen, &sizes, opts.quick, round, &mut report)?;
        }
        if let Some(bin) = &opts.peers_bin {
            eprint!(" peers");
            let file = opts.out_dir.join(format!("peer-samples-{round}.json"));
            peers::run(bin, opts.quick, &file)?;
            peers::add_samples(&mut report, &file, round)?;
        }
        eprintln!(" ({:.0} s)", started.elapsed().as_secs_f64());
    }
    if opts.curves && opts.runs("memory") {
        eprintln!("memory probes");
        memory::probe_all(&sizes, &mut report)?;
    }
    if opts.runs("allocs") {
        eprintln!("allocation probes");
        allocs::probe_all(tmp.path(), &mut report)?;
    }
    report.finish(started.elapsed());
    print!("{report}");
    std::fs::create_dir_all(&opts.out_dir)?;
    let json = opts.out_dir.join("results.json");
    std::fs::write(&json, report.to_json())?;
    let svg = opts.out_dir.join("chart.svg");
    std::fs::write(&svg, report.to_svg())?;
    let mut written = vec![json, svg];
    if let Some(curves) = report.curves_svg() {
        let path = opts.out_dir.join("curves.svg");
        std::fs::write(&path, curves)?;
        written.push(path);
    }
    let names: Vec<String> = written.iter().map(|p| p.display().to_string()).collect();
    println!("\nwrote {}", names.join(", "));
    Ok(())
}

fn machine_description() -> String {
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    format!(
        "{cpus} CPU(s), {model}, {} {}, SQLite {}",
        std::env::consts::OS,
        std::env::consts::ARCH,
        rusqlite::version()
    )
}
