//! Results: every sample of the run, the figures computed from them (cost
//! ratios, scaling, curves, each with its interval over paired rounds), and
//! their forms: the printed tables ([`text`]), `results.json`, and the
//! charts ([`svg`]).

pub mod goals;
mod json;
pub mod svg;
mod text;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::stats::Estimate;
use crate::targets::{Family, Target};
use crate::workloads::Measure;

/// One measurement: one workload on one target in one round.
pub struct Sample {
    target: String,
    family: Family,
    workload: &'static str,
    /// Rows of the database, for the size sweep; `None` for the main
    /// workloads (whose scale the run's header gives).
    size: Option<i64>,
    round: usize,
    ops: u64,
    /// Wall-clock seconds.
    secs: f64,
    /// CPU seconds of the measuring thread, for single-threaded steps.
    cpu_secs: Option<f64>,
}

/// Which time a figure divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The measuring thread's CPU time for in-memory targets (other
    /// processes' time left out; nothing there waits for a device), wall
    /// time for disk targets and multi-threaded workloads.
    Preferred,
    /// Wall-clock time, always.
    Wall,
}

impl Sample {
    /// A sample of `target`.
    pub fn new(target: &Target, workload: &'static str, round: usize, m: Measure) -> Sample {
        Sample::named(target.name.clone(), target.family, workload, round, m)
    }

    /// A sample of the size sweep, on a database of `rows` rows.
    pub fn sized(
        target: &Target,
        workload: &'static str,
        rows: i64,
        round: usize,
        m: Measure,
    ) -> Sample {
        Sample {
            size: Some(rows),
            ..Sample::new(target, workload, round, m)
        }
    }

    /// A sample of a target known only by name (the peer runner's, measured
    /// in another process of the same round).
    pub fn named(
        target: String,
        family: Family,
        workload: &'static str,
        round: usize,
        m: Measure,
    ) -> Sample {
        Sample {
            target,
            family,
            workload,
            size: None,
            round,
            ops: m.ops,
            secs: m.elapsed.as_secs_f64(),
            cpu_secs: m.cpu.map(|c| c.as_secs_f64()),
        }
    }

    fn throughput(&self, clock: Clock) -> f64 {
        let secs = match (clock, self.family, self.cpu_secs) {
            (Clock::Preferred, Family::Memory, Some(cpu)) => cpu,
            _ => self.secs,
        };
        self.ops as f64 / secs.max(1e-9)
    }
}

/// Process memory per byte of database, measured in a child process.
#[derive(Clone, Debug)]
pub struct MemoryProbe {
    /// `memdb`, `mvcc`, `mvcc + 10 snapshots`.
    pub store: String,
    /// Rows of the database.
    pub rows: i64,
    /// The database's size (page count × page size).
    pub db_bytes: u64,
    /// Growth of the process's resident memory while the database was
    /// built (and the snapshots taken).
    pub rss_growth: u64,
}

impl MemoryProbe {
    /// Bytes of process memory per byte of database.
    pub fn per_db_byte(&self) -> f64 {
        self.rss_growth as f64 / self.db_bytes.max(1) as f64
    }
}

/// Rust heap allocations on the page I/O path of a stack, counted around a
/// read and write workload.
#[derive(Clone, Debug)]
pub struct AllocProbe {
    /// The stack (`memdb`, `cksm(memdb)`, …).
    pub target: String,
    /// Allocations and reallocations the workload's thread made.
    pub allocations: u64,
    /// Page-sized reads and writes the stack served meanwhile.
    pub page_ios: u64,
}

impl AllocProbe {
    /// Allocations per page read or written.
    pub fn per_page_io(&self) -> f64 {
        self.allocations as f64 / self.page_ios.max(1) as f64
    }
}

/// Everything one run measured.
pub struct Report {
    quick: bool,
    reps: usize,
    machine: String,
    /// What the peer samples were measured with, when there are any.
    peers: Option<String>,
    samples: Vec<Sample>,
    /// The run's targets, in the order tables and charts list them.
    order: Vec<String>,
    elapsed: Duration,
    /// Baselines that cannot run a workload the way the targets do
    /// (workload, baseline, why): no cost ratio against them.
    incomparable: Vec<(&'static str, &'static str, &'static str)>,
    memory: Vec<MemoryProbe>,
    memory_note: Option<String>,
    allocations: Vec<AllocProbe>,
}

impl Report {
    /// An empty report.
    pub fn new(quick: bool, reps: usize, machine: String) -> Report {
        Report {
            quick,
            reps,
            machine,
            peers: None,
            samples: Vec::new(),
            order: Vec::new(),
            elapsed: Duration::ZERO,
            incomparable: Vec::new(),
            memory: Vec::new(),
            memory_note: None,
            allocations: Vec::new(),
        }
    }

    /// The order in which tables and charts list targets (others, such as
    /// peers, follow in the order they were measured).
    pub fn set_order(&mut self, targets: Vec<String>) {
        self.order = targets;
    }

    /// Adds a sample.
    pub fn add(&mut self, s: Sample) {
        self.samples.push(s);
    }

    /// Records that `baseline` cannot run `workload` as the targets do
    /// (SQLite's memdb has no WAL: its readers wait for the writer), so no
    /// target is compared with it there; the scaling plots show it instead.
    pub fn mark_incomparable(
        &mut self,
        workload: &'static str,
        baseline: &'static str,
        why: &'static str,
    ) {
        if !self.is_incomparable(workload, baseline) {
            self.incomparable.push((workload, baseline, why));
        }
    }

    fn is_incomparable(&self, workload: &str, baseline: &str) -> bool {
        self.incomparable
            .iter()
            .any(|(w, b, _)| *w == workload && *b == baseline)
    }

    /// Records which peer library the `sqlcipher…` targets ran on.
    pub fn set_peers(&mut self, library: String) {
        self.peers = Some(library);
    }

    /// Adds a memory probe's result.
    pub fn add_memory(&mut self, probe: MemoryProbe) {
        self.memory.push(probe);
    }

    /// Why the memory probes did not run (no `/proc` on this system, …).
    pub fn set_memory_note(&mut self, note: String) {
        self.memory_note = Some(note);
    }

    /// Adds an allocation probe's result.
    pub fn add_allocations(&mut self, probe: AllocProbe) {
        self.allocations.push(probe);
    }

    /// Records the run's duration.
    pub fn finish(&mut self, elapsed: Duration) {
        self.elapsed = elapsed;
    }

    /// Main workloads (no size) in the order they were first measured.
    fn workloads(&self) -> Vec<&'static str> {
        let mut seen = Vec::new();
        for s in self.samples.iter().filter(|s| s.size.is_none()) {
            if !seen.contains(&s.workload) {
                seen.push(s.workload);
            }
        }
        seen
    }

    /// Targets in the order of `order` (the run's target list), then any
    /// others (peers) in the order they were first measured.
    fn targets(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for t in &self.order {
            if self.samples.iter().any(|s| &s.target == t) {
                seen.push(t);
            }
        }
        for s in &self.samples {
            if !seen.contains(&s.target.as_str()) {
                seen.push(&s.target);
            }
        }
        seen
    }

    /// The sizes of the sweep, ascending.
    fn sweep_sizes(&self) -> Vec<i64> {
        let mut sizes: Vec<i64> = self.samples.iter().filter_map(|s| s.size).collect();
        sizes.sort_unstable();
        sizes.dedup();
        sizes
    }

    /// The sweep's workloads, in the order they were first measured.
    fn sweep_workloads(&self) -> Vec<&'static str> {
        let mut seen = Vec::new();
        for s in self.samples.iter().filter(|s| s.size.is_some()) {
            if !seen.contains(&s.workload) {
                seen.push(s.workload);
            }
        }
        seen
    }

    fn family_of(&self, target: &str) -> Option<Family> {
        self.samples
            .iter()
            .find(|s| s.target == target)
            .map(|s| s.family)
    }

    /// Throughput of `target` on `workload` (at `size`) per round.
    fn per_round(&self, workload: &str, size: Option<i64>, target: &str) -> BTreeMap<usize, f64> {
        self.per_round_by(Clock::Preferred, workload, size, target)
    }

    fn per_round_by(
        &self,
        clock: Clock,
        workload: &str,
        size: Option<i64>,
        target: &str,
    ) -> BTreeMap<usize, f64> {
        self.samples
            .iter()
            .filter(|s| s.workload == workload && s.size == size && s.target == target)
            .map(|s| (s.round, s.throughput(clock)))
            .collect()
    }

    /// Median throughput (ops/s) with its interval over rounds.
    pub fn throughput(&self, workload: &str, size: Option<i64>, target: &str) -> Option<Estimate> {
        let v: Vec<f64> = self
            .per_round(workload, size, target)
            .into_values()
            .collect();
        Estimate::of(&v, &format!("thr/{workload}/{size:?}/{target}"))
    }

    /// Median seconds per operation with its interval over rounds.
    pub fn seconds_per_op(
        &self,
        workload: &str,
        size: Option<i64>,
        target: &str,
    ) -> Option<Estimate> {
        let v: Vec<f64> = self
            .per_round(workload, size, target)
            .into_values()
            .map(|t| 1.0 / t.max(1e-12))
            .collect();
        Estimate::of(&v, &format!("spo/{workload}/{size:?}/{target}"))
    }

    /// The cost of `target` relative to `other` on `workload` (at `size`):
    /// per round, `other`'s throughput over `target`'s, from rounds where
    /// both ran (1.10 = `target` 10 % slower).
    pub fn relative(
        &self,
        workload: &str,
        size: Option<i64>,
        target: &str,
        other: &str,
    ) -> Option<Estimate> {
        self.relative_by(Clock::Preferred, workload, size, target, other)
    }

    /// [`relative`](Report::relative) by the chosen clock.
    pub fn relative_by(
        &self,
        clock: Clock,
        workload: &str,
        size: Option<i64>,
        target: &str,
        other: &str,
    ) -> Option<Estimate> {
        if self.is_incomparable(workload, other) {
            return None;
        }
        let mine = self.per_round_by(clock, workload, size, target);
        let theirs = self.per_round_by(clock, workload, size, other);
        let v: Vec<f64> = mine
            .iter()
            .filter_map(|(r, t)| theirs.get(r).map(|o| o / t.max(1e-12)))
            .collect();
        let tag = if clock == Clock::Wall { "wall" } else { "cost" };
        Estimate::of(&v, &format!("{tag}/{workload}/{size:?}/{target}/{other}"))
    }

    /// Whether `target`'s samples of `workload` are timed by CPU time.
    pub fn uses_cpu_time(&self, workload: &str, target: &str) -> bool {
        self.samples.iter().any(|s| {
            s.workload == workload
                && s.target == target
                && s.family == Family::Memory
                && s.cpu_secs.is_some()
        })
    }

    /// The cost of `target` relative to SQLite's own VFS of its family.
    pub fn cost(&self, workload: &str, size: Option<i64>, target: &str) -> Option<Estimate> {
        self.cost_by(Clock::Preferred, workload, size, target)
    }

    /// [`cost`](Report::cost) by the chosen clock.
    pub fn cost_by(
        &self,
        clock: Clock,
        workload: &str,
        size: Option<i64>,
        target: &str,
    ) -> Option<Estimate> {
        let base = self.family_of(target)?.baseline();
        self.relative_by(clock, workload, size, target, base)
    }

    /// Per round, `target`'s throughput on `workload` over its throughput on
    /// `over` (scaling with readers, snapshot sizes, …).
    pub fn within(&self, target: &str, workload: &str, over: &str) -> Option<Estimate> {
        let num = self.per_round(workload, None, target);
        let den = self.per_round(over, None, target);
        let v: Vec<f64> = num
            .iter()
            .filter_map(|(r, n)| den.get(r).map(|d| n / d.max(1e-12)))
            .collect();
        Estimate::of(&v, &format!("within/{target}/{workload}/{over}"))
    }

    /// Rust allocations per page I/O of `target`, exact (a count).
    pub fn allocations_per_page_io(&self, target: &str) -> Option<Estimate> {
        let p = self.allocations.iter().find(|p| p.target == target)?;
        let v = p.per_page_io();
        Some(Estimate {
            median: v,
            bounds: Some((v, v)),
            rounds: 1,
        })
    }
}

/// `1.23M`, `456.7k`, `8.9`.
fn human(ops: f64) -> String {
    if ops >= 1e6 {
        format!("{:.2}M", ops / 1e6)
    } else if ops >= 1e3 {
        format!("{:.1}k", ops / 1e3)
    } else {
        format!("{ops:.1}")
    }
}

/// `850 ns`, `12.3 µs`, `4.56 ms` for a duration in seconds.
fn human_secs(s: f64) -> String {
    if s >= 1e-3 {
        format!("{:.2} ms", s * 1e3)
    } else if s >= 1e-5 {
        format!("{:.1} µs", s * 1e6)
    } else if s >= 1e-6 {
        format!("{:.2} µs", s * 1e6)
    } else {
        format!("{:.0} ns", s * 1e9)
    }
}

/// `10k`, `1M` rows.
fn human_rows(rows: i64) -> String {
    if rows >= 1_000_000 && rows % 1_000_000 == 0 {
        format!("{}M", rows / 1_000_000)
    } else if rows >= 1_000 && rows % 1_000 == 0 {
        format!("{}k", rows / 1_000)
    } else {
        rows.to_string()
    }
}
