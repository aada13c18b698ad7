//! The benchmark runner behind `cargo xtask bench`: the same workloads on
//! SQLite's own VFSes and on every backend and stack of this workspace, in
//! one run, reported as ratios to SQLite's own.
#![forbid(unsafe_code)]

mod report;
mod targets;
mod workloads;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use report::{Report, Sample};
use targets::Target;
use workloads::{Measure, Scale};

struct Options {
    quick: bool,
    reps: usize,
    filter: Option<String>,
    out_dir: std::path::PathBuf,
    /// The peer runner (`bench-peers`), run once per round.
    peers_bin: Option<std::path::PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        quick: false,
        reps: 5,
        filter: None,
        out_dir: std::path::PathBuf::from("target/bench"),
        peers_bin: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--reps" => {
                o.reps = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--reps takes a number")?
            }
            "--filter" => o.filter = Some(args.next().ok_or("--filter takes a target name part")?),
            "--out" => o.out_dir = args.next().ok_or("--out takes a directory")?.into(),
            "--peers-bin" => {
                o.peers_bin = Some(
                    args.next()
                        .ok_or("--peers-bin takes the path of the bench-peers binary")?
                        .into(),
                )
            }
            "-h" | "--help" => {
                println!(
                    "vfs-bench [--quick] [--reps N] [--filter NAME] [--out DIR] [--peers-bin PATH]\n\
                     Runs every workload on every target; writes DIR/results.json and DIR/chart.svg.\n\
                     --peers-bin also runs that bench-peers binary in every round (cargo xtask bench --peers)."
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.quick {
        o.reps = o.reps.min(2);
    }
    Ok(o)
}

fn main() {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("vfs-bench: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(&opts) {
        eprintln!("vfs-bench: {e}");
        std::process::exit(1);
    }
}

fn run(opts: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let scale = if opts.quick {
        Scale::QUICK
    } else {
        Scale::FULL
    };
    let tmp = tempfile::tempdir()?;
    let all = targets::all(tmp.path())?;
    let chosen: Vec<&Target> = all
        .iter()
        .filter(|t| {
            opts.filter
                .as_ref()
                .is_none_or(|f| t.name.contains(f.as_str()))
                || t.name == t.family.baseline()
        })
        .collect();
    let mut report = Report::new(opts.quick, opts.reps, machine_description());
    let started = Instant::now();

    // Repetitions are rounds over every target (not five runs of one target
    // after another), so a slow spell of the machine or the disk lands on
    // all targets alike instead of skewing one of them.
    for rep in 0..opts.reps {
        eprint!("round {}/{} ", rep + 1, opts.reps);
        for target in &chosen {
            measure_round(target, &scale, rep, &mut report)?;
            eprint!(".");
        }
        if let Some(bin) = &opts.peers_bin {
            let file = opts.out_dir.join(format!("peer-samples-{rep}.json"));
            run_peers(bin, opts.quick, &file)?;
            add_peer_samples(&mut report, &file)?;
            eprint!("p");
        }
        eprintln!();
    }
    report.finish(started.elapsed());
    print!("{report}");
    std::fs::create_dir_all(&opts.out_dir)?;
    let json = opts.out_dir.join("results.json");
    std::fs::write(&json, report.to_json())?;
    let svg = opts.out_dir.join("chart.svg");
    std::fs::write(&svg, report.to_svg())?;
    println!("\nwrote {} and {}", json.display(), svg.display());
    Ok(())
}

/// Every workload name a peer file may use.
const WORKLOADS: [&str; 12] = [
    "bulk_insert",
    "small_txns",
    "point_rowid",
    "point_index",
    "range_scan",
    "update",
    "order_by_spill",
    "join",
    "delete",
    "mixed",
    "small_txns_sync_normal",
    "small_txns_sync_full",
];

/// Runs one repetition of the peer runner (another process: it links
/// SQLCipher, whose SQLite cannot share a process with ours).
fn run_peers(
    bin: &std::path::Path,
    quick: bool,
    out: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut cmd = std::process::Command::new(bin);
    cmd.args(["--reps", "1", "--out"]).arg(out);
    if quick {
        cmd.arg("--quick");
    }
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run the peer runner {}: {e}", bin.display()))?;
    if !output.status.success() {
        return Err(format!(
            "the peer runner {} failed ({}): {}",
            bin.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    Ok(())
}

/// Folds the samples `bench-peers` wrote into the report.
fn add_peer_samples(
    report: &mut Report,
    path: &std::path::Path,
) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read peer samples {}: {e}", path.display()))?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| format!("peer samples {} are not JSON: {e}", path.display()))?;
    let bad = |what: &str| format!("peer samples {}: {what}", path.display());
    let samples = doc["samples"]
        .as_array()
        .ok_or_else(|| bad("no \"samples\" array"))?;
    for s in samples {
        let target = s["target"]
            .as_str()
            .ok_or_else(|| bad("a sample has no target"))?;
        let family = match s["family"].as_str() {
            Some("memory") => targets::Family::Memory,
            Some("disk") => targets::Family::Disk,
            other => return Err(bad(&format!("unknown family {other:?}")).into()),
        };
        let name = s["workload"].as_str().unwrap_or("");
        let workload = WORKLOADS
            .iter()
            .find(|w| **w == name)
            .ok_or_else(|| bad(&format!("unknown workload {name:?}")))?;
        let (Some(ops), Some(secs)) = (s["ops"].as_u64(), s["seconds"].as_f64()) else {
            return Err(bad("a sample lacks ops or seconds").into());
        };
        let m = Measure {
            ops,
            elapsed: Duration::from_secs_f64(secs.max(0.0)),
        };
        report.add(Sample::peer(target.to_owned(), family, workload, m));
    }
    report.set_peers(
        doc["library"]
            .as_str()
            .unwrap_or("an unnamed peer library")
            .to_owned(),
    );
    Ok(())
}

/// One repetition of everything `target` runs.
fn measure_round(
    target: &Target,
    scale: &Scale,
    rep: usize,
    report: &mut Report,
) -> Result<(), Box<dyn std::error::Error>> {
    let steps = if target.read_only {
        match target.open_prefilled(scale, rep)? {
            Some(conn) => workloads::read_only(&conn, scale)?,
            None => Vec::new(),
        }
    } else {
        let mut conn = target.open_fresh(rep)?;
        let mut steps = workloads::single_connection(&mut conn, scale)?;
        let mixed: Duration = steps.iter().map(|(_, m)| m.elapsed).sum();
        steps.push((
            "mixed",
            Measure {
                ops: 1,
                elapsed: mixed,
            },
        ));
        steps
    };
    for (workload, m) in steps {
        report.add(Sample::new(target, workload, m));
    }
    if target.concurrent {
        for readers in [1usize, 2, 4] {
            let m = concurrent_readers(target, scale, readers, rep, true)?;
            report.add(Sample::new(target, concurrent_name(readers), m));
        }
        if target.readers_without_writer {
            let m = concurrent_readers(target, scale, 2, rep, false)?;
            report.add(Sample::new(target, "readers_2_no_writer", m));
        }
    }
    for (workload, m) in target.extra_measures(scale, rep)? {
        report.add(Sample::new(target, workload, m));
    }
    Ok(())
}

fn concurrent_name(readers: usize) -> &'static str {
    match readers {
        1 => "readers_1_with_writer",
        2 => "readers_2_with_writer",
        _ => "readers_4_with_writer",
    }
}

/// `readers` threads doing point lookups on their own connections while one
/// writer (if `with_writer`) commits small transactions; returns the
/// readers' total lookups.
fn concurrent_readers(
    target: &Target,
    scale: &Scale,
    readers: usize,
    rep: usize,
    with_writer: bool,
) -> Result<Measure, Box<dyn std::error::Error>> {
    let uri = target.fresh_uri(&format!("conc-{readers}-{rep}"));
    let mut setup = target.connect(&uri)?;
    if target.wal {
        let mode: String = setup.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))?;
        if mode != "wal" {
            return Err(format!("{}: WAL refused ({mode})", target.name).into());
        }
    }
    let small = Scale {
        rows: scale.rows / 2,
        ..*scale
    };
    workloads::schema(&setup)?;
    workloads::bulk_insert(&mut setup, &small)?;
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let barrier = Arc::new(std::sync::Barrier::new(readers + 2));
    let mut handles = Vec::new();
    for i in 0..readers {
        let conn = target.connect(&uri)?;
        let (stop, total, barrier) = (stop.clone(), total.clone(), barrier.clone());
        let rows = small.rows;
        handles.push(thread::spawn(move || -> rusqlite::Result<()> {
            let mut rng = workloads::Rng::new(100 + i as u64);
            let mut s = conn.prepare("SELECT b FROM t1 WHERE id = ?1")?;
            barrier.wait();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let _: Option<String> = s.query_row([rng.below(rows) + 1], |r| r.get(0)).ok();
                n += 1;
            }
            total.fetch_add(n, Ordering::Relaxed);
            Ok(())
        }));
    }
    let writer = {
        let conn = target.connect(&uri)?;
        let (stop, barrier) = (stop.clone(), barrier.clone());
        let rows = small.rows;
        thread::spawn(move || -> rusqlite::Result<()> {
            let mut rng = workloads::Rng::new(99);
            let mut s = conn.prepare("UPDATE t1 SET a = a + 1 WHERE id = ?1")?;
            barrier.wait();
            while with_writer && !stop.load(Ordering::Relaxed) {
                // A busy answer (rollback-journal targets) is part of the
                // measured cost, not an error.
                let _ = s.execute([rng.below(rows) + 1]);
            }
            Ok(())
        })
    };
    barrier.wait();
    let start = Instant::now();
    thread::sleep(scale.reader_time); // the measurement window, not synchronisation
    stop.store(true, Ordering::Relaxed);
    let elapsed = start.elapsed();
    for h in handles {
        h.join().map_err(|_| "reader panicked")??;
    }
    writer.join().map_err(|_| "writer panicked")??;
    Ok(Measure {
        ops: total.load(Ordering::Relaxed),
        elapsed,
    })
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
