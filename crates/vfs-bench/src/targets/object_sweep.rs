//! The object-store latency sweep: cold and warm point reads and commits
//! at 5, 20 and 50 ms per request, with and without prefetch (issue #24).
//!
//! Its own `InMemory` store behind a `FaultStore` whose per-request
//! latency each step sets, holding the bench's database (built once per
//! scale, with no latency). Every measure is wall time per operation:
//!
//! * `cold_lookup`: a new process (an `ObjectVfs` with an empty cache)
//!   opens the database and reads one row by rowid, then
//!   `cold_next_lookup`: the next rows it reads (distinct rowids, same
//!   process: the cost once the b-tree's upper levels are cached);
//! * `warm_lookup`: point lookups on a connection whose cache holds the
//!   rows (the default `poll` of 1 s has not elapsed: no request);
//! * `commit`: one-row transactions (one conditional PUT each);
//! * `commit_async`: the same with `sync=async` (group commit: `COMMIT`
//!   returns once the transaction is in a local queue directory), then one
//!   `PRAGMA object_flush`; the PUTs per transaction (batching) are
//!   printed with the request counts.
//!
//! The sweep sleeps (the latency is real time): its full form takes about
//! half a minute per round, its `--quick` form only 5 ms and a few
//! operations. Request counts per step are printed once per run (stderr).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use vfs_object::fault::{FaultController, FaultStore};
use vfs_object::object_store::{ObjectStore, memory::InMemory};
use vfs_object::{ObjectOptions, ObjectVfs};

use super::{ExtraFn, Res, SEQ};
use crate::workloads::{self, Measure, Scale};

/// Latencies of the full sweep, in milliseconds per request.
pub const FULL_LATENCIES_MS: [u64; 3] = [5, 20, 50];
/// Latencies of the `--quick` form.
pub const QUICK_LATENCIES_MS: [u64; 1] = [5];

const DB: &str = "/sweep.db";

/// One store with the bench's database, built at one scale.
struct Fixture {
    rows: i64,
    store: Arc<dyn ObjectStore>,
    ctl: FaultController,
}

/// A measure's name, interned (the report keys measures by `&'static str`).
fn name(ms: u64, prefetch: bool, what: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashMap<String, &'static str>>> = OnceLock::new();
    let key = format!(
        "object_{ms}ms_{what}{}",
        if prefetch { "_prefetch" } else { "" }
    );
    let mut names = NAMES.get_or_init(Default::default).lock().unwrap();
    names
        .entry(key.clone())
        .or_insert_with(|| Box::leak(key.into_boxed_str()))
}

fn build_fixture(rows: i64, scale: &Scale) -> Res<Fixture> {
    let faults = FaultStore::new(Arc::new(InMemory::new()));
    let ctl = faults.controller();
    let store: Arc<dyn ObjectStore> = Arc::new(faults);
    let (vfs, name) = register(&store, true)?;
    {
        let mut conn = Connection::open(format!("file:{DB}?vfs={name}"))?;
        workloads::schema(&conn)?;
        workloads::bulk_insert(&mut conn, scale)?;
    }
    vfs_core::unregister(&name)?;
    drop(vfs);
    Ok(Fixture { rows, store, ctl })
}

/// A new "process" over `store`.
fn register(store: &Arc<dyn ObjectStore>, prefetch: bool) -> Res<(ObjectVfs, String)> {
    let vfs = ObjectVfs::new(
        store.clone(),
        "sweep",
        ObjectOptions {
            prefetch,
            ..ObjectOptions::default()
        },
    )?;
    let name = format!("bench-sweep-{}", SEQ.fetch_add(1, Ordering::Relaxed));
    let _ = vfs_core::register(&name, vfs.clone(), false)?;
    Ok((vfs, name))
}

/// The sweep, as an extra measure of a target (see the module's doc).
pub fn latency_sweep() -> ExtraFn {
    let built: Mutex<Option<Fixture>> = Mutex::new(None);
    Box::new(move |scale, rep| {
        let quick = scale.rows < Scale::FULL.rows;
        let mut guard = built.lock().unwrap();
        if guard.as_ref().is_none_or(|f| f.rows != scale.rows) {
            *guard = Some(build_fixture(scale.rows, scale)?);
        }
        let f = guard.as_ref().expect("built above");
        let latencies: &[u64] = if quick {
            &QUICK_LATENCIES_MS
        } else {
            &FULL_LATENCIES_MS
        };
        let (cold, next, warm, commits) = if quick {
            (1, 2, 50, 2)
        } else {
            (3, 10, 2000, 20)
        };
        let mut out = Vec::new();
        for &ms in latencies {
            for prefetch in [false, true] {
                out.extend(step(
                    f,
                    scale,
                    rep,
                    ms,
                    prefetch,
                    (cold, next, warm, commits),
                )?);
            }
            out.extend(async_commits(f, rep, ms, commits)?);
        }
        f.ctl.set_latency(Duration::ZERO);
        Ok(out)
    })
}

/// One latency, with or without prefetch.
fn step(
    f: &Fixture,
    scale: &Scale,
    rep: usize,
    ms: u64,
    prefetch: bool,
    (cold, next, warm, commits): (i64, i64, i64, i64),
) -> Res<Vec<(&'static str, Measure)>> {
    let latency = Duration::from_millis(ms);
    let rows = scale.rows;
    let id = |i: i64| 1 + (i * 7919 + rep as i64 * 104_729) % rows;
    let mut out = Vec::new();
    let lookup = |c: &Connection, i: i64| -> Res<()> {
        let _: Option<String> = c
            .query_row("SELECT b FROM t1 WHERE id = ?1", [id(i)], |r| r.get(0))
            .ok();
        Ok(())
    };

    f.ctl.set_latency(latency);
    let (mut cold_t, mut next_t) = (Duration::ZERO, Duration::ZERO);
    let mut cold_req = None;
    for k in 0..cold {
        let (vfs, name) = register(&f.store, prefetch)?;
        let before = f.ctl.counts();
        let start = Instant::now();
        let c = Connection::open(format!("file:{DB}?vfs={name}"))?;
        lookup(&c, k * 1000)?;
        cold_t += start.elapsed();
        let first = f.ctl.counts().since(&before);
        let start = Instant::now();
        for i in 0..next {
            lookup(&c, k * 1000 + 1 + i)?;
        }
        next_t += start.elapsed();
        let all = f.ctl.counts().since(&before);
        cold_req.get_or_insert((first, all.since(&first)));
        drop(c);
        vfs_core::unregister(&name)?;
        drop(vfs);
    }
    out.push((
        name(ms, prefetch, "cold_lookup"),
        Measure::wall(cold as u64, cold_t),
    ));
    out.push((
        name(ms, prefetch, "cold_next_lookup"),
        Measure::wall((cold * next) as u64, next_t),
    ));

    // Warm: the same rows again on one connection.
    let (vfs, name_w) = register(&f.store, prefetch)?;
    let c = Connection::open(format!("file:{DB}?vfs={name_w}"))?;
    let hot = 100.min(warm);
    for i in 0..hot {
        lookup(&c, i)?;
    }
    let before = f.ctl.counts();
    let start = Instant::now();
    for i in 0..warm {
        lookup(&c, i % hot)?;
    }
    let warm_t = start.elapsed();
    let warm_req = f.ctl.counts().since(&before);
    out.push((
        name(ms, prefetch, "warm_lookup"),
        Measure::wall(warm as u64, warm_t),
    ));

    // Commits: one-row transactions, in a database of their own (the
    // read database's log stays as it is, so every cold open costs the
    // same).
    let w = Connection::open(format!(
        "file:/sweep-commits-{ms}-{}-{rep}.db?vfs={name_w}",
        u8::from(prefetch)
    ))?;
    w.execute_batch("CREATE TABLE c(x)")?;
    let before = f.ctl.counts();
    let start = Instant::now();
    for i in 0..commits {
        w.execute("INSERT INTO c VALUES (?1)", [i])?;
    }
    let commit_t = start.elapsed();
    let commit_req = f.ctl.counts().since(&before);
    out.push((
        name(ms, prefetch, "commit"),
        Measure::wall(commits as u64, commit_t),
    ));
    drop((c, w));
    vfs_core::unregister(&name_w)?;
    drop(vfs);
    f.ctl.set_latency(Duration::ZERO);

    if rep == 0 {
        let (first, later) = cold_req.unwrap_or_default();
        eprintln!(
            "\nvfs-bench: object sweep {ms} ms/request, prefetch {}: cold lookup {:?} ({} LIST + {} GET), \
             next {} lookups {:?} each ({} GET in all), warm lookup {:?} ({} requests for {warm}), \
             commit {:?} ({} PUT for {commits})",
            if prefetch { "on" } else { "off" },
            cold_t / cold as u32,
            first.lists,
            first.gets,
            next,
            next_t / (cold * next) as u32,
            later.gets,
            warm_t / warm as u32,
            warm_req.total(),
            commit_t / commits as u32,
            commit_req.puts,
        );
    }
    Ok(out)
}

/// Group commit at one latency: `commits` one-row transactions on a
/// connection opened with `sync=async` (each returns once its transaction
/// is in the local queue), then one `PRAGMA object_flush` (waits until the
/// uploader has published them, batched).
fn async_commits(
    f: &Fixture,
    rep: usize,
    ms: u64,
    commits: i64,
) -> Res<Vec<(&'static str, Measure)>> {
    let queue = tempfile::tempdir()?;
    let (vfs, name) = register(&f.store, false)?;
    let w = Connection::open(format!(
        "file:/sweep-async-{ms}-{rep}.db?vfs={name}&sync=async&queue={}",
        queue.path().display()
    ))?;
    w.execute_batch("CREATE TABLE c(x)")?;
    let flush = |c: &Connection| -> Res<u64> {
        let lsn: String = c.query_row("PRAGMA object_flush", [], |r| r.get(0))?;
        Ok(lsn.parse()?)
    };
    let first = flush(&w)?;
    f.ctl.set_latency(Duration::from_millis(ms));
    let before = f.ctl.counts();
    let start = Instant::now();
    for i in 0..commits {
        w.execute("INSERT INTO c VALUES (?1)", [i])?;
    }
    let commit_t = start.elapsed();
    let start = Instant::now();
    let last = flush(&w)?;
    let flush_t = start.elapsed();
    let req = f.ctl.counts().since(&before);
    f.ctl.set_latency(Duration::ZERO);
    drop(w);
    vfs_core::unregister(&name)?;
    drop(vfs);
    if rep == 0 {
        eprintln!(
            "\nvfs-bench: object sweep {ms} ms/request, sync=async: commit {:?} each, then \
             object_flush {flush_t:?}; {} PUT for {commits} transactions ({:.2} per transaction) \
             in {} commit objects",
            commit_t / commits as u32,
            req.puts,
            req.puts as f64 / commits as f64,
            last - first,
        );
    }
    Ok(vec![
        (
            name_async(ms, "commit_async"),
            Measure::wall(commits as u64, commit_t),
        ),
        (name_async(ms, "flush_async"), Measure::wall(1, flush_t)),
    ])
}

fn name_async(ms: u64, what: &str) -> &'static str {
    name(ms, false, what)
}
