//! One round of measurements: every target once on every workload.
//!
//! A target and its baseline must be measured close together in time, so
//! that a slow spell of the machine (another process compiling, say) falls
//! on both sides of the pair. A round therefore opens one connection per
//! target and runs workload step `k` on every target before step `k + 1`,
//! in an order shuffled per step (seeded), instead of running all of one
//! target's steps before the next target's; read-only steps run
//! [`READ_REPEATS`] times so, and the fastest counts. Reader scaling is
//! interleaved the same way, per reader count.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rusqlite::Connection;

use crate::report::{Report, Sample};
use crate::stats::shuffled;
use crate::targets::{Family, Target};
use crate::workloads::{self, Measure, STEPS, Scale};

pub type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Adds the target's and the workload's names to an error.
fn context<E: std::fmt::Display>(target: &Target, what: &str) -> impl FnOnce(E) -> String {
    let name = target.name.clone();
    let what = what.to_owned();
    move |e| format!("{name}: {what}: {e}")
}

/// How many times a round measures each read-only step (interleaved across
/// targets); the fastest counts. Interference from other processes only
/// ever adds time, so the fastest of a few is the measure least disturbed
/// by it. Steps that write run once: repeating them would change the
/// database the later steps see.
pub const READ_REPEATS: usize = 3;

/// The time a measure is judged by when keeping the fastest: the thread's
/// CPU time when known.
pub fn time_of(m: &Measure) -> Duration {
    m.cpu.unwrap_or(m.elapsed)
}

/// A target's connection for the single-connection steps of a round.
struct Live<'t> {
    target: &'t Target,
    conn: Connection,
    /// The database to discard at the end of the round (none for a
    /// read-only image).
    db: Option<String>,
    /// The scale (fewer small transactions on disk).
    scale: Scale,
    mixed: Duration,
    mixed_cpu: Option<Duration>,
}

/// The single-connection workloads, step by step across `targets`.
pub fn single_connection(
    targets: &[&Target],
    scale: &Scale,
    round: usize,
    report: &mut Report,
) -> Res<()> {
    let mut live = Vec::new();
    for &target in targets {
        if target.read_only {
            if let Some(conn) = target.open_prefilled(scale, round)? {
                live.push(Live {
                    target,
                    conn,
                    db: None,
                    scale: *scale,
                    mixed: Duration::ZERO,
                    mixed_cpu: Some(Duration::ZERO),
                });
            }
            continue;
        }
        let db = target.fresh_db(&format!("single-{round}"));
        let conn = target.connect(&target.uri(&db))?;
        workloads::schema(&conn).map_err(context(target, "schema"))?;
        live.push(Live {
            target,
            conn,
            db: Some(db),
            scale: match target.family {
                Family::Memory => *scale,
                Family::Disk => scale.for_disk(),
            },
            mixed: Duration::ZERO,
            mixed_cpu: Some(Duration::ZERO),
        });
    }
    for (k, step) in STEPS.iter().enumerate() {
        let repeats = if step.read_only { READ_REPEATS } else { 1 };
        let mut best: Vec<Option<Measure>> = vec![None; live.len()];
        for rep in 0..repeats {
            for i in shuffled(live.len(), &format!("round {round} step {k} rep {rep}")) {
                let l = &mut live[i];
                if l.target.read_only && !step.read_only {
                    continue;
                }
                let m = (step.run)(&mut l.conn, &l.scale).map_err(context(l.target, step.name))?;
                if best[i].is_none_or(|b| time_of(&m) < time_of(&b)) {
                    best[i] = Some(m);
                }
            }
        }
        for (l, m) in live.iter_mut().zip(best) {
            let Some(m) = m else { continue };
            l.mixed += m.elapsed;
            l.mixed_cpu = l.mixed_cpu.zip(m.cpu).map(|(a, b)| a + b);
            report.add(Sample::new(l.target, step.name, round, m));
        }
    }
    for l in live {
        if !l.target.read_only {
            // The sum of the steps: the figure the earlier targets refer to.
            let m = Measure {
                ops: 1,
                elapsed: l.mixed,
                cpu: l.mixed_cpu,
            };
            report.add(Sample::new(l.target, "mixed", round, m));
        }
        drop(l.conn);
        if let Some(db) = l.db {
            l.target.discard(&db);
        }
    }
    Ok(())
}

/// The concurrent-reader workloads, interleaved across `targets` per
/// reader count.
pub fn concurrent(
    targets: &[&Target],
    scale: &Scale,
    round: usize,
    report: &mut Report,
) -> Res<()> {
    let concurrent: Vec<&Target> = targets.iter().copied().filter(|t| t.concurrent).collect();
    for (name, readers) in [
        ("readers_1_with_writer", 1usize),
        ("readers_2_with_writer", 2),
        ("readers_4_with_writer", 4),
    ] {
        for i in shuffled(concurrent.len(), &format!("round {round} {name}")) {
            let t = concurrent[i];
            let m = concurrent_readers(t, scale, readers, round, true).map_err(context(t, name))?;
            report.add(Sample::new(t, name, round, m));
        }
    }
    for t in concurrent.iter().filter(|t| t.readers_without_writer) {
        let m = concurrent_readers(t, scale, 2, round, false)
            .map_err(context(t, "readers_2_no_writer"))?;
        report.add(Sample::new(t, "readers_2_no_writer", round, m));
    }
    Ok(())
}

/// The workloads of the memory-mapping comparison: the read mix without
/// and with `PRAGMA mmap_size`, with SQLite's default page cache (2 MB)
/// and with a small one (100 pages: a database much larger than its
/// cache, where a page read in place saves a copy).
pub const MMAP_WORKLOADS: [(&str, i64, i64); 4] = [
    ("read_mix", 0, -2000),
    ("read_mix_mmap", workloads::MMAP_SIZE, -2000),
    ("read_mix_small_cache", 0, 100),
    ("read_mix_small_cache_mmap", workloads::MMAP_SIZE, 100),
];

/// The memory-mapped reads comparison: on the targets marked `mmap`, a
/// database filled once per round, read by the same read mix without and
/// with memory mapping, with two cache sizes, interleaved across targets
/// like the other steps (best of [`READ_REPEATS`]).
pub fn mapped_reads(
    targets: &[&Target],
    scale: &Scale,
    round: usize,
    report: &mut Report,
) -> Res<()> {
    let mut live = Vec::new();
    for &target in targets.iter().filter(|t| t.mmap) {
        let db = target.fresh_db(&format!("mmap-{round}"));
        let mut conn = target.connect(&target.uri(&db))?;
        workloads::schema(&conn).map_err(context(target, "schema"))?;
        workloads::bulk_insert(&mut conn, scale).map_err(context(target, "bulk_insert"))?;
        live.push((target, conn, db));
    }
    for (name, mmap_size, cache_size) in MMAP_WORKLOADS {
        let mut best: Vec<Option<Measure>> = vec![None; live.len()];
        for rep in 0..READ_REPEATS {
            for i in shuffled(live.len(), &format!("round {round} {name} rep {rep}")) {
                let (target, conn, _) = &live[i];
                let m = workloads::read_mix(conn, scale, mmap_size, cache_size)
                    .map_err(context(target, name))?;
                if best[i].is_none_or(|b| time_of(&m) < time_of(&b)) {
                    best[i] = Some(m);
                }
            }
        }
        for ((target, ..), m) in live.iter().zip(best) {
            if let Some(m) = m {
                report.add(Sample::new(target, name, round, m));
            }
        }
    }
    for (target, conn, db) in live {
        drop(conn);
        target.discard(&db);
    }
    Ok(())
}

/// Target-specific measurements (sync modes on disk, snapshot costs).
pub fn extras(targets: &[&Target], scale: &Scale, round: usize, report: &mut Report) -> Res<()> {
    for t in targets {
        for (workload, m) in t.extra_measures(scale, round)? {
            report.add(Sample::new(t, workload, round, m));
        }
    }
    Ok(())
}

/// `readers` threads doing point lookups on their own connections while one
/// writer (if `with_writer`) commits small transactions; returns the
/// readers' total lookups.
fn concurrent_readers(
    target: &Target,
    scale: &Scale,
    readers: usize,
    round: usize,
    with_writer: bool,
) -> Res<Measure> {
    let db = target.fresh_db(&format!("conc-{readers}-{round}"));
    let uri = target.uri(&db);
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
    drop(setup);
    target.discard(&db);
    Ok(Measure::wall(total.load(Ordering::Relaxed), elapsed))
}
