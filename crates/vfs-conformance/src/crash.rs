//! Crash recovery and I/O errors, through [`vfs_fault`].
//!
//! A sweep registers a stack whose bottom is a [`Fault`](vfs_fault::Fault)
//! layer (so the "medium" is whatever the fault layer wraps), runs a
//! deterministic transactional workload once to count its operations, then
//! once per point:
//!
//! * [`power_cut_sweep`]: cuts the power just before the *n*th
//!   durability operation (write, truncate, sync, open, delete), restarts,
//!   reopens, and checks that `integrity_check` is `ok`, that every
//!   transaction whose `COMMIT` succeeded is there, and that the database is
//!   exactly the state after some whole number of transactions (no partial
//!   transaction), compared with the same workload run on a plain in-memory
//!   database;
//! * [`io_error_sweep`]: fails the *n*th matching operation once, and checks
//!   that the error reached the application, that the same connection goes
//!   on to commit every transaction (retrying the failed one), and that
//!   the final database is exact, before and after reopening.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::Connection;
use vfs_core::{FileKind, Vfs, register};
use vfs_fault::{Failure, FaultController, OpSet, Rule};

use crate::Location;
use crate::backend::unique;
use crate::check::{dump, integrity};

/// A rollback-journal or WAL mode for crash tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JournalMode {
    /// `DELETE`.
    Delete,
    /// `TRUNCATE`.
    Truncate,
    /// `PERSIST`.
    Persist,
    /// `WAL`.
    Wal,
}

impl JournalMode {
    /// The four crash-safe modes.
    pub const ALL: [JournalMode; 4] = [
        JournalMode::Delete,
        JournalMode::Truncate,
        JournalMode::Persist,
        JournalMode::Wal,
    ];

    /// The pragma value.
    pub fn name(self) -> &'static str {
        match self {
            JournalMode::Delete => "DELETE",
            JournalMode::Truncate => "TRUNCATE",
            JournalMode::Persist => "PERSIST",
            JournalMode::Wal => "WAL",
        }
    }

    /// The weakest `synchronous` setting that keeps every acknowledged
    /// commit through a power cut: `EXTRA` for `DELETE` (with `FULL`, the
    /// journal's unlink is not followed by a directory sync, so a cut right
    /// after `COMMIT` returns can resurrect it and roll the commit back),
    /// `FULL` otherwise.
    pub fn durable_synchronous(self) -> &'static str {
        match self {
            JournalMode::Delete => "EXTRA",
            _ => "FULL",
        }
    }
}

/// One crash-test workload and how densely to sweep it.
#[derive(Clone, Debug)]
pub struct CrashPlan {
    /// Journal mode.
    pub mode: JournalMode,
    /// `PRAGMA synchronous` value.
    pub synchronous: &'static str,
    /// Transactions in the workload.
    pub transactions: usize,
    /// Seed of the workload's contents.
    pub seed: u64,
    /// Page size.
    pub page_size: u32,
    /// `PRAGMA cache_size` (pages); a small cache makes SQLite spill dirty
    /// pages to the database before commit.
    pub cache_size: i32,
    /// WAL only: `PRAGMA wal_autocheckpoint` (pages), so checkpoints happen
    /// inside the workload.
    pub wal_autocheckpoint: u32,
    /// Try every `stride`th point (1 = every one).
    pub stride: u64,
}

impl CrashPlan {
    /// The CI plan for `mode`: 10 transactions, every point.
    pub fn ci(mode: JournalMode) -> CrashPlan {
        CrashPlan {
            mode,
            synchronous: mode.durable_synchronous(),
            transactions: 10,
            seed: 1,
            page_size: 4096,
            cache_size: 10,
            wal_autocheckpoint: 8,
            stride: 1,
        }
    }

    /// The plans of the long run for `mode`: several seeds, page sizes and
    /// cache sizes, 20 transactions each, every point.
    pub fn long(mode: JournalMode) -> Vec<CrashPlan> {
        let mut v = Vec::new();
        for seed in 10..1000 {
            for (page_size, cache_size) in [(4096, 10), (512, 2000), (1024, 5)] {
                v.push(CrashPlan {
                    mode,
                    synchronous: mode.durable_synchronous(),
                    transactions: 20,
                    seed,
                    page_size,
                    cache_size,
                    wal_autocheckpoint: if seed % 2 == 0 { 8 } else { 50 },
                    stride: 1,
                });
            }
        }
        v
    }

    fn describe(&self) -> String {
        format!(
            "{}/{} seed {} page {} cache {} txns {}",
            self.mode.name(),
            self.synchronous,
            self.seed,
            self.page_size,
            self.cache_size,
            self.transactions
        )
    }
}

/// The workload: setup statements, then transactions (each a list of
/// statements; the last sets `meta.n` to the transaction's number).
#[derive(Clone, Debug)]
pub struct Workload {
    /// Pragmas and schema, run before any fault is armed.
    pub setup: Vec<String>,
    /// The transactions, numbered from 1.
    pub transactions: Vec<Vec<String>>,
    /// Statements run between transactions (after the transaction with the
    /// same index), such as checkpoints.
    pub maintenance: Vec<Option<String>>,
}

fn hex(rng: &mut StdRng, len: usize) -> String {
    let mut s = String::with_capacity(2 * len + 3);
    s.push_str("x'");
    for _ in 0..len {
        s.push_str(&format!("{:02x}", rng.r#gen::<u8>()));
    }
    s.push('\'');
    s
}

fn payload(rng: &mut StdRng) -> String {
    let len = if rng.gen_range(0..6) == 0 {
        rng.gen_range(5000..12000)
    } else {
        rng.gen_range(50..1500)
    };
    hex(rng, len)
}

impl Workload {
    /// The workload of `plan`.
    pub fn new(plan: &CrashPlan) -> Workload {
        let mut rng = StdRng::seed_from_u64(plan.seed);
        let mut setup = vec![
            format!("PRAGMA page_size={}", plan.page_size),
            format!("PRAGMA journal_mode={}", plan.mode.name()),
            format!("PRAGMA synchronous={}", plan.synchronous),
            format!("PRAGMA cache_size={}", plan.cache_size),
        ];
        if plan.mode == JournalMode::Wal {
            setup.push(format!(
                "PRAGMA wal_autocheckpoint={}",
                plan.wal_autocheckpoint
            ));
        }
        setup.push(
            "CREATE TABLE t(id INTEGER PRIMARY KEY, txn INT NOT NULL, v BLOB NOT NULL)".into(),
        );
        setup.push("CREATE INDEX t_txn ON t(txn)".into());
        setup.push("CREATE TABLE meta(k TEXT PRIMARY KEY, n INT NOT NULL)".into());
        setup.push("INSERT INTO meta VALUES ('n', 0)".into());
        let mut live: Vec<i64> = Vec::new();
        let mut next = 1;
        for _ in 0..30 {
            setup.push(format!(
                "INSERT INTO t VALUES ({next}, 0, {})",
                payload(&mut rng)
            ));
            live.push(next);
            next += 1;
        }
        let mut transactions = Vec::new();
        let mut maintenance = Vec::new();
        for i in 1..=plan.transactions {
            let mut t = Vec::new();
            for _ in 0..rng.gen_range(1..=4) {
                t.push(format!(
                    "INSERT INTO t VALUES ({next}, {i}, {})",
                    payload(&mut rng)
                ));
                live.push(next);
                next += 1;
            }
            for _ in 0..rng.gen_range(1..=3) {
                let id = live[rng.gen_range(0..live.len())];
                t.push(format!(
                    "UPDATE t SET txn = {i}, v = {} WHERE id = {id}",
                    payload(&mut rng)
                ));
            }
            if rng.gen_bool(0.4) && live.len() > 5 {
                let id = live.swap_remove(rng.gen_range(0..live.len()));
                t.push(format!("DELETE FROM t WHERE id = {id}"));
            }
            t.push(format!("UPDATE meta SET n = {i} WHERE k = 'n'"));
            transactions.push(t);
            maintenance.push(match (plan.mode, i % 4) {
                (JournalMode::Wal, 0) => Some("PRAGMA wal_checkpoint(TRUNCATE)".to_owned()),
                _ => None,
            });
        }
        Workload {
            setup,
            transactions,
            maintenance,
        }
    }

    /// The logical dump after setup (index 0) and after each transaction,
    /// computed on a plain in-memory database.
    pub fn oracle(&self) -> Vec<Vec<String>> {
        let c = Connection::open_in_memory().expect("in-memory oracle");
        for s in &self.setup {
            c.execute_batch(s).expect("oracle setup");
        }
        let mut out = vec![dump(&c, "main").expect("oracle dump")];
        for t in &self.transactions {
            c.execute_batch("BEGIN").expect("oracle");
            for s in t {
                c.execute_batch(s).expect("oracle statement");
            }
            c.execute_batch("COMMIT").expect("oracle");
            out.push(dump(&c, "main").expect("oracle dump"));
        }
        out
    }
}

fn run_txn(c: &Connection, t: &[String]) -> rusqlite::Result<()> {
    c.execute_batch("BEGIN")?;
    for s in t {
        c.execute_batch(s)?;
    }
    c.execute_batch("COMMIT")
}

/// What a power-cut sweep found.
#[derive(Clone, Debug, Default)]
pub struct CrashReport {
    /// The stack's label.
    pub label: String,
    /// The plan, in words.
    pub plan: String,
    /// Durability operations in one run of the workload.
    pub workload_points: u64,
    /// Crash points tried.
    pub points: u64,
    /// Reopened databases whose integrity check failed (or that would not
    /// open).
    pub integrity_failures: u64,
    /// Crash points after which a transaction whose `COMMIT` had succeeded
    /// was missing.
    pub lost_commits: u64,
    /// Crash points after which the database was not exactly the state after
    /// a whole number of transactions.
    pub bad_states: u64,
    /// Crash points whose restoration by the fault layer failed.
    pub restore_errors: u64,
    /// Transactions whose `COMMIT` succeeded, summed over points.
    pub acknowledged: u64,
    /// Points where the in-flight transaction survived although its
    /// `COMMIT` had not returned.
    pub in_flight_survived: u64,
    /// The first few failures, described.
    pub failures: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
}

impl CrashReport {
    /// Panics unless every point recovered correctly.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert!(
            self.integrity_failures == 0
                && self.lost_commits == 0
                && self.bad_states == 0
                && self.restore_errors == 0,
            "{self}\n{}",
            self.failures.join("\n")
        );
    }

    fn fail(&mut self, what: String) {
        if self.failures.len() < 10 {
            self.failures.push(what);
        }
    }
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "crash[{} {}]: {} points ({} per run), integrity failures {}, lost commits {}, \
             bad states {}, restore errors {}, acknowledged commits checked {}, in-flight \
             commits survived {}, {:.2?}",
            self.label,
            self.plan,
            self.points,
            self.workload_points,
            self.integrity_failures,
            self.lost_commits,
            self.bad_states,
            self.restore_errors,
            self.acknowledged,
            self.in_flight_survived,
            self.elapsed
        )
    }
}

/// A registered stack with a fault layer at its bottom, and where its
/// database files go.
pub struct Target<S: Vfs> {
    label: String,
    vfs: Arc<S>,
    ctl: FaultController,
    name: String,
    dir: String,
    _tmp: Option<tempfile::TempDir>,
    registration: Option<vfs_core::Registration>,
}

impl<S: Vfs> Target<S> {
    /// Registers `stack` (whose bottom layer is the `Fault` that `ctl`
    /// steers) under a fresh name, with files at `location`.
    pub fn new(label: &str, stack: S, ctl: FaultController, location: &Location) -> Target<S> {
        let vfs = Arc::new(stack);
        let name = unique(&format!("crash-{label}"));
        let registration = register(&name, vfs.clone(), false)
            .unwrap_or_else(|e| panic!("registering {name}: {e}"));
        let (dir, tmp) = match location {
            Location::TempDir | Location::RamTempDir => {
                let t = location.temp_dir();
                (t.path().display().to_string(), Some(t))
            }
            Location::Prefix(p) => (format!("{}/{name}", p.trim_end_matches('/')), None),
        };
        Target {
            label: label.to_owned(),
            vfs,
            ctl,
            name,
            dir,
            _tmp: tmp,
            registration: Some(registration),
        }
    }

    /// The controller of the fault layer.
    pub fn controller(&self) -> &FaultController {
        &self.ctl
    }

    fn uri(&self, file: &str) -> String {
        format!("file:{}/{file}?vfs={}", self.dir, self.name)
    }

    fn open(&self, file: &str) -> rusqlite::Result<Connection> {
        let c = Connection::open(self.uri(file))?;
        c.busy_timeout(Duration::ZERO)?;
        Ok(c)
    }

    fn remove(&self, file: &str) {
        for suffix in ["", "-journal", "-wal"] {
            let _ = self.vfs.delete(
                vfs_core::FileName::new(&format!("{}/{file}{suffix}", self.dir)),
                false,
            );
        }
    }
}

impl<S: Vfs> Drop for Target<S> {
    fn drop(&mut self) {
        if let Some(r) = self.registration.take()
            && let Err((r, e)) = r.unregister()
            && !std::thread::panicking()
        {
            eprintln!("vfs-conformance: could not unregister {}: {e}", r.name());
        }
    }
}

/// Runs the setup, arms nothing, runs the workload; answers the connection
/// and (acknowledged, attempted) transaction counts.
fn run_workload(c: &Connection, w: &Workload) -> (usize, usize) {
    let mut acked = 0;
    let mut attempted = 0;
    for (i, t) in w.transactions.iter().enumerate() {
        attempted = i + 1;
        if run_txn(c, t).is_err() {
            let _ = c.execute_batch("ROLLBACK");
            break;
        }
        acked = i + 1;
        if let Some(m) = &w.maintenance[i]
            && c.execute_batch(m).is_err()
        {
            break;
        }
    }
    (acked, attempted)
}

fn setup(c: &Connection, w: &Workload, ctx: &str) {
    for s in &w.setup {
        c.execute_batch(s)
            .unwrap_or_else(|e| panic!("{ctx}: setup {s:.60}: {e}"));
    }
}

fn meta_n(c: &Connection) -> rusqlite::Result<usize> {
    c.query_row("SELECT n FROM meta WHERE k = 'n'", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|n| n as usize)
}

/// Cuts the power at every `plan.stride`th durability point of the
/// workload (and once after it), and checks recovery each time.
pub fn power_cut_sweep<S: Vfs>(target: &Target<S>, plan: &CrashPlan) -> CrashReport {
    let start = Instant::now();
    let ctl = &target.ctl;
    let w = Workload::new(plan);
    let oracle = w.oracle();
    let mut report = CrashReport {
        label: target.label.clone(),
        plan: plan.describe(),
        ..CrashReport::default()
    };
    let ctx0 = format!("{} {}", target.label, report.plan);
    ctl.restart().ok();
    ctl.clear_rules();
    // Count the points.
    {
        let file = "count.db";
        let c = target
            .open(file)
            .unwrap_or_else(|e| panic!("{ctx0}: open: {e}"));
        setup(&c, &w, &ctx0);
        ctl.reset_counts();
        let (acked, _) = run_workload(&c, &w);
        assert_eq!(
            acked,
            w.transactions.len(),
            "{ctx0}: the workload fails without faults"
        );
        report.workload_points = ctl.count(OpSet::DURABILITY);
        drop(c);
        target.remove(file);
    }
    let mut n = 1;
    while n <= report.workload_points + 1 {
        let file = format!("p{n}.db");
        let ctx = format!("{ctx0} point {n}");
        let c = target
            .open(&file)
            .unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
        setup(&c, &w, &ctx);
        ctl.persist_all()
            .unwrap_or_else(|e| panic!("{ctx}: persist: {e}"));
        let rule = ctl.cut_power_at(n);
        let (acked, attempted) = run_workload(&c, &w);
        if ctl.is_powered() {
            ctl.cut_power_now();
        }
        drop(c);
        ctl.remove(rule);
        report.points += 1;
        report.acknowledged += acked as u64;
        if let Err(e) = ctl.restart() {
            report.restore_errors += 1;
            report.fail(format!("{ctx}: restore: {e}"));
        }
        match verify(target, &file, &oracle, acked, attempted) {
            Ok(survived) => report.in_flight_survived += survived as u64,
            Err((kind, msg)) => {
                match kind {
                    Broken::Integrity => report.integrity_failures += 1,
                    Broken::Lost => report.lost_commits += 1,
                    Broken::State => report.bad_states += 1,
                }
                report.fail(format!("{ctx}: {msg}"));
            }
        }
        target.remove(&file);
        n += plan.stride.max(1);
    }
    report.elapsed = start.elapsed();
    report
}

/// The statement of a transaction, aimed at the attached database `aux`.
fn on_aux(stmt: &str) -> String {
    stmt.replacen("INSERT INTO t ", "INSERT INTO aux.t ", 1)
        .replacen("UPDATE t ", "UPDATE aux.t ", 1)
        .replacen("DELETE FROM t ", "DELETE FROM aux.t ", 1)
        .replacen("UPDATE meta ", "UPDATE aux.meta ", 1)
}

/// Like [`power_cut_sweep`], with every transaction applied to two
/// databases at once (the second attached as `aux`, in the same directory,
/// same journal mode): a super-journal commit. After each cut both
/// databases must hold the same number of transactions (atomic across
/// files), no fewer than were acknowledged, each exactly that state.
/// Rollback-journal modes only (WAL gives no cross-file atomicity).
pub fn two_database_sweep<S: Vfs>(target: &Target<S>, plan: &CrashPlan) -> CrashReport {
    assert!(
        plan.mode != JournalMode::Wal,
        "super-journals need a rollback journal"
    );
    let start = Instant::now();
    let ctl = &target.ctl;
    let w = Workload::new(plan);
    let oracle = w.oracle();
    let mut report = CrashReport {
        label: format!("{}+attached", target.label),
        plan: plan.describe(),
        ..CrashReport::default()
    };
    let ctx0 = format!("{} {}", report.label, report.plan);
    ctl.restart().ok();
    ctl.clear_rules();
    let prepare = |main: &str, aux: &str, ctx: &str| -> Connection {
        let a = target
            .open(aux)
            .unwrap_or_else(|e| panic!("{ctx}: open aux: {e}"));
        setup(&a, &w, ctx);
        drop(a);
        let c = target
            .open(main)
            .unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
        setup(&c, &w, ctx);
        c.execute(&format!("ATTACH '{}' AS aux", target.uri(aux)), [])
            .unwrap_or_else(|e| panic!("{ctx}: attach: {e}"));
        for p in &w.setup {
            if let Some(rest) = p.strip_prefix("PRAGMA ")
                && !rest.starts_with("page_size")
            {
                c.execute_batch(&format!("PRAGMA aux.{rest}"))
                    .unwrap_or_else(|e| panic!("{ctx}: {p}: {e}"));
            }
        }
        c
    };
    let run = |c: &Connection| -> (usize, usize) {
        let mut acked = 0;
        let mut attempted = 0;
        for (i, t) in w.transactions.iter().enumerate() {
            attempted = i + 1;
            let r = (|| {
                c.execute_batch("BEGIN")?;
                for s in t {
                    c.execute_batch(s)?;
                    c.execute_batch(&on_aux(s))?;
                }
                c.execute_batch("COMMIT")
            })();
            if r.is_err() {
                let _ = c.execute_batch("ROLLBACK");
                break;
            }
            acked = i + 1;
        }
        (acked, attempted)
    };
    {
        let c = prepare("count.db", "count-aux.db", &ctx0);
        ctl.reset_counts();
        let probe = ctl.add(
            Rule::fail(vfs_core::Op::Open, Failure::Io)
                .file_kind(FileKind::SuperJournal)
                .nth(u64::MAX),
        );
        let (acked, _) = run(&c);
        assert_eq!(
            acked,
            w.transactions.len(),
            "{ctx0}: the workload fails without faults"
        );
        report.workload_points = ctl.count(OpSet::DURABILITY);
        assert_eq!(
            ctl.seen(probe),
            w.transactions.len() as u64,
            "{ctx0}: one super-journal per transaction"
        );
        ctl.remove(probe);
        drop(c);
        target.remove("count.db");
        target.remove("count-aux.db");
    }
    let mut n = 1;
    while n <= report.workload_points + 1 {
        let (main, aux) = (format!("p{n}.db"), format!("p{n}-aux.db"));
        let ctx = format!("{ctx0} point {n}");
        let c = prepare(&main, &aux, &ctx);
        ctl.persist_all()
            .unwrap_or_else(|e| panic!("{ctx}: persist: {e}"));
        let rule = ctl.cut_power_at(n);
        let (acked, attempted) = run(&c);
        if ctl.is_powered() {
            ctl.cut_power_now();
        }
        drop(c);
        ctl.remove(rule);
        report.points += 1;
        report.acknowledged += acked as u64;
        if let Err(e) = ctl.restart() {
            report.restore_errors += 1;
            report.fail(format!("{ctx}: restore: {e}"));
        }
        // Open the main database first: its hot journal names the
        // super-journal, which decides for both files.
        let mut held = Vec::new();
        for file in [&main, &aux] {
            match verify(target, file, &oracle, acked, attempted) {
                Ok(_) => {
                    let c = target.open(file).expect("reopen");
                    held.push(meta_n(&c).unwrap_or(usize::MAX));
                }
                Err((kind, msg)) => {
                    match kind {
                        Broken::Integrity => report.integrity_failures += 1,
                        Broken::Lost => report.lost_commits += 1,
                        Broken::State => report.bad_states += 1,
                    }
                    report.fail(format!("{ctx} ({file}): {msg}"));
                }
            }
        }
        if held.len() == 2 && held[0] != held[1] {
            report.bad_states += 1;
            report.fail(format!(
                "{ctx}: not atomic across files: main holds {} transactions, aux {}",
                held[0], held[1]
            ));
        } else if held.len() == 2 && held[0] > acked {
            report.in_flight_survived += 1;
        }
        target.remove(&main);
        target.remove(&aux);
        n += plan.stride.max(1);
    }
    report.elapsed = start.elapsed();
    report
}

/// The CI two-database sweep in `mode` ([`two_database_sweep`] with
/// [`CrashPlan::ci`], 6 transactions).
pub fn ci_two_databases<S: Vfs>(target: &Target<S>, mode: JournalMode) -> CrashReport {
    let plan = CrashPlan {
        transactions: 6,
        ..CrashPlan::ci(mode)
    };
    let r = two_database_sweep(target, &plan);
    println!("vfs-conformance: {r}");
    r.assert_clean();
    assert!(r.points > 50, "{r}: too few points to mean anything");
    r
}

enum Broken {
    Integrity,
    Lost,
    State,
}

/// Reopens after a crash; answers whether the in-flight transaction
/// survived.
fn verify<S: Vfs>(
    target: &Target<S>,
    file: &str,
    oracle: &[Vec<String>],
    acked: usize,
    attempted: usize,
) -> Result<bool, (Broken, String)> {
    let c = target
        .open(file)
        .map_err(|e| (Broken::Integrity, format!("reopen: {e}")))?;
    match integrity(&c, "main") {
        Ok(s) if s == "ok" => {}
        Ok(s) => return Err((Broken::Integrity, format!("integrity_check: {s}"))),
        Err(e) => return Err((Broken::Integrity, format!("integrity_check failed: {e}"))),
    }
    let n = meta_n(&c).map_err(|e| (Broken::State, format!("reading meta: {e}")))?;
    if n < acked {
        return Err((
            Broken::Lost,
            format!("{acked} commits acknowledged, database holds {n}"),
        ));
    }
    if n > attempted {
        return Err((
            Broken::State,
            format!("database holds {n} transactions, only {attempted} attempted"),
        ));
    }
    let d = dump(&c, "main").map_err(|e| (Broken::State, format!("dump: {e}")))?;
    if d != oracle[n] {
        let i = d
            .iter()
            .zip(&oracle[n])
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        return Err((
            Broken::State,
            format!(
                "not the state after transaction {n} (line {i}: {:?} vs {:?})",
                d.get(i),
                oracle[n].get(i)
            ),
        ));
    }
    Ok(n > acked)
}

/// An I/O-error sweep: which operations fail, how, on which file kind.
#[derive(Clone, Debug)]
pub struct IoErrorPlan {
    /// The workload (journal mode, size, seed).
    pub crash: CrashPlan,
    /// Operations that may fail.
    pub ops: OpSet,
    /// The error they return.
    pub failure: Failure,
    /// Only on files of this kind.
    pub kind: Option<FileKind>,
    /// Whether every injected error must reach the application. SQLite
    /// absorbs some by design: `SQLITE_BUSY` from the lock it takes to spill
    /// its cache mid-transaction (it just does not spill), and any error of
    /// an automatic WAL checkpoint (the default WAL hook ignores it; the
    /// data stays in the WAL). Plans that can hit those set this to
    /// `false`; integrity and exact contents are still required.
    pub must_surface: bool,
}

impl IoErrorPlan {
    /// The CI plan: 6 transactions, every 3rd data operation (read, write,
    /// truncate, sync, file size) fails with a plain I/O error. In WAL mode
    /// automatic checkpoints are off (their errors are ignored by SQLite's
    /// default WAL hook); the workload checkpoints explicitly instead, and
    /// those errors must surface.
    pub fn ci(mode: JournalMode) -> IoErrorPlan {
        IoErrorPlan {
            crash: CrashPlan {
                transactions: 6,
                stride: 3,
                wal_autocheckpoint: 0,
                ..CrashPlan::ci(mode)
            },
            ops: OpSet::DATA,
            failure: Failure::Io,
            kind: None,
            must_surface: true,
        }
    }
}

/// What an I/O-error sweep found.
#[derive(Clone, Debug, Default)]
pub struct IoErrorReport {
    /// The stack's label.
    pub label: String,
    /// The plan, in words.
    pub plan: String,
    /// Matching operations in one run of the workload.
    pub workload_ops: u64,
    /// Errors injected (one per point).
    pub injected: u64,
    /// Injected errors the application saw.
    pub surfaced: u64,
    /// Injected errors nobody reported (described).
    pub swallowed: Vec<String>,
    /// Whether the plan required every error to surface.
    pub must_surface: bool,
    /// Integrity failures, on the same connection or after reopening.
    pub integrity_failures: u64,
    /// Points where the final database was not exactly every transaction
    /// once (a lost or doubled commit).
    pub wrong_states: u64,
    /// Points where the connection could not commit after the error.
    pub unusable: u64,
    /// The first few failures, described.
    pub failures: Vec<String>,
    /// Wall time.
    pub elapsed: Duration,
}

impl IoErrorReport {
    /// Panics unless every injected error surfaced and nothing was lost.
    #[track_caller]
    pub fn assert_clean(&self) {
        assert!(
            (self.swallowed.is_empty() || !self.must_surface)
                && self.integrity_failures == 0
                && self.wrong_states == 0
                && self.unusable == 0,
            "{self}\nswallowed: {:?}\n{}",
            self.swallowed,
            self.failures.join("\n")
        );
    }

    fn fail(&mut self, what: String) {
        if self.failures.len() < 10 {
            self.failures.push(what);
        }
    }
}

impl fmt::Display for IoErrorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ioerr[{} {}]: {} errors injected ({} matching ops per run), {} surfaced, {} swallowed, \
             integrity failures {}, wrong states {}, unusable connections {}, {:.2?}",
            self.label,
            self.plan,
            self.injected,
            self.workload_ops,
            self.surfaced,
            self.swallowed.len(),
            self.integrity_failures,
            self.wrong_states,
            self.unusable,
            self.elapsed
        )
    }
}

/// Fails every `stride`th matching operation of the workload, once per
/// run, and checks the application saw it and lost nothing.
pub fn io_error_sweep<S: Vfs>(target: &Target<S>, plan: &IoErrorPlan) -> IoErrorReport {
    let start = Instant::now();
    let ctl = &target.ctl;
    let w = Workload::new(&plan.crash);
    let oracle = w.oracle();
    let last = oracle.last().expect("oracle").clone();
    let mut report = IoErrorReport {
        label: target.label.clone(),
        plan: format!(
            "{} ops {:?} {:?}{}",
            plan.crash.describe(),
            plan.ops,
            plan.failure,
            plan.kind
                .map(|k| format!(" on {}", k.name()))
                .unwrap_or_default()
        ),
        must_surface: plan.must_surface,
        ..IoErrorReport::default()
    };
    let ctx0 = format!("{} {}", target.label, report.plan);
    ctl.restart().ok();
    ctl.clear_rules();
    let make_rule = || {
        let r = Rule::fail(plan.ops, plan.failure);
        match plan.kind {
            Some(k) => r.file_kind(k),
            None => r,
        }
    };
    {
        let c = target.open("count.db").expect("open");
        setup(&c, &w, &ctx0);
        let probe = ctl.add(make_rule().nth(u64::MAX));
        let (acked, _) = run_workload(&c, &w);
        assert_eq!(
            acked,
            w.transactions.len(),
            "{ctx0}: the workload fails without faults"
        );
        report.workload_ops = ctl.seen(probe);
        ctl.remove(probe);
        drop(c);
        target.remove("count.db");
    }
    let mut n = 1;
    while n <= report.workload_ops {
        let file = format!("e{n}.db");
        let ctx = format!("{ctx0} point {n}");
        let c = target
            .open(&file)
            .unwrap_or_else(|e| panic!("{ctx}: open: {e}"));
        setup(&c, &w, &ctx);
        let rule = ctl.add(make_rule().nth(n));
        let mut errors = 0;
        let mut usable = true;
        for (i, t) in w.transactions.iter().enumerate() {
            let mut done = false;
            for _attempt in 0..3 {
                if run_txn(&c, t).is_ok() {
                    done = true;
                    break;
                }
                errors += 1;
                let _ = c.execute_batch("ROLLBACK");
                // Did it commit although COMMIT reported an error?
                let held = meta_n(&c).or_else(|_| {
                    errors += 1;
                    meta_n(&c)
                });
                if held.is_ok_and(|h| h > i) {
                    done = true;
                    break;
                }
            }
            if !done {
                usable = false;
                break;
            }
            if let Some(m) = &w.maintenance[i]
                && c.execute_batch(m).is_err()
            {
                errors += 1;
            }
        }
        let fired = ctl.fired(rule);
        ctl.remove(rule);
        report.injected += fired;
        if fired > 0 {
            if errors > 0 {
                report.surfaced += 1;
            } else {
                let ev = ctl.events();
                let what = ev
                    .last()
                    .map(|e| {
                        format!(
                            "{} #{} on {} {}",
                            e.op.name(),
                            e.index,
                            e.kind.map_or("?", |k| k.name()),
                            e.path.as_deref().unwrap_or(vfs_core::FileName::new(""))
                        )
                    })
                    .unwrap_or_default();
                report.swallowed.push(format!("{ctx}: {what}"));
            }
        }
        ctl.clear_events();
        if !usable {
            report.unusable += 1;
            report.fail(format!(
                "{ctx}: the connection could not commit after the error"
            ));
        }
        for round in ["same connection", "reopened"] {
            let conn;
            let c = if round == "same connection" {
                &c
            } else {
                conn = match target.open(&file) {
                    Ok(x) => x,
                    Err(e) => {
                        report.integrity_failures += 1;
                        report.fail(format!("{ctx}: reopen: {e}"));
                        break;
                    }
                };
                &conn
            };
            match integrity(c, "main") {
                Ok(s) if s == "ok" => {}
                other => {
                    report.integrity_failures += 1;
                    report.fail(format!("{ctx} ({round}): integrity {other:?}"));
                    continue;
                }
            }
            if usable {
                match dump(c, "main") {
                    Ok(d) if d == last => {}
                    Ok(_) => {
                        report.wrong_states += 1;
                        report.fail(format!(
                            "{ctx} ({round}): not every transaction exactly once (meta n = {:?})",
                            meta_n(c).ok()
                        ));
                    }
                    Err(e) => {
                        report.wrong_states += 1;
                        report.fail(format!("{ctx} ({round}): dump: {e}"));
                    }
                }
            }
        }
        drop(c);
        target.remove(&file);
        n += plan.crash.stride.max(1);
    }
    report.elapsed = start.elapsed();
    report
}

/// The CI power-cut sweep for `mode` ([`CrashPlan::ci`]): prints the
/// report, panics unless it is clean.
pub fn ci_power_cuts<S: Vfs>(target: &Target<S>, mode: JournalMode) -> CrashReport {
    let r = power_cut_sweep(target, &CrashPlan::ci(mode));
    println!("vfs-conformance: {r}");
    r.assert_clean();
    assert!(r.points > 50, "{r}: too few points to mean anything");
    r
}

/// The CI I/O-error sweeps in `mode`: data operations (read, write,
/// truncate, sync, file size) failing with their own `SQLITE_IOERR_*`
/// code.
pub fn ci_io_errors<S: Vfs>(target: &Target<S>, mode: JournalMode) -> IoErrorReport {
    let r = io_error_sweep(target, &IoErrorPlan::ci(mode));
    println!("vfs-conformance: {r}");
    r.assert_clean();
    assert!(r.injected > 20, "{r}: too few errors to mean anything");
    r
}

/// The CI sweeps of `SQLITE_FULL` on every 2nd write, `SQLITE_BUSY` and
/// `SQLITE_IOERR_LOCK` on every 2nd lock, and I/O errors on every open,
/// delete and access, in a rollback-journal mode.
pub fn ci_full_and_lock_errors<S: Vfs>(target: &Target<S>) -> Vec<IoErrorReport> {
    let base = IoErrorPlan::ci(JournalMode::Delete);
    let plans = [
        IoErrorPlan {
            ops: OpSet::from(vfs_core::Op::Write),
            failure: Failure::full(),
            crash: CrashPlan {
                stride: 2,
                ..base.crash.clone()
            },
            ..base.clone()
        },
        IoErrorPlan {
            ops: OpSet::from(vfs_core::Op::Lock),
            failure: Failure::busy(),
            crash: CrashPlan {
                stride: 2,
                ..base.crash.clone()
            },
            // A cache spill that cannot lock just does not spill.
            must_surface: false,
            ..base.clone()
        },
        IoErrorPlan {
            ops: OpSet::from(vfs_core::Op::Lock),
            failure: Failure::Io,
            crash: CrashPlan {
                stride: 2,
                ..base.crash.clone()
            },
            ..base.clone()
        },
        IoErrorPlan {
            ops: OpSet::of(&[
                vfs_core::Op::Open,
                vfs_core::Op::Delete,
                vfs_core::Op::Access,
            ]),
            failure: Failure::Io,
            crash: CrashPlan {
                stride: 1,
                ..base.crash.clone()
            },
            ..base.clone()
        },
    ];
    plans
        .iter()
        .map(|p| {
            let r = io_error_sweep(target, p);
            println!("vfs-conformance: {r}");
            r.assert_clean();
            r
        })
        .collect()
}

/// The long run's size: `VFS_CRASH_POINTS` from the environment, or
/// 100,000.
pub fn long_points() -> u64 {
    std::env::var("VFS_CRASH_POINTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000)
}

/// Sweeps [`CrashPlan::long`] plans, cycling through the four journal
/// modes, until at least `total` crash points were tried; prints progress
/// and a summary per mode; panics at the first unclean plan.
pub fn long_power_cuts<S: Vfs>(target: &Target<S>, total: u64) -> u64 {
    let plans: Vec<Vec<CrashPlan>> = JournalMode::ALL
        .iter()
        .map(|m| CrashPlan::long(*m))
        .collect();
    let mut done = 0u64;
    let mut per_mode = [0u64; 4];
    let mut i = 0;
    let start = Instant::now();
    while done < total {
        let m = i % 4;
        let Some(plan) = plans[m].get(i / 4) else {
            break;
        };
        let r = power_cut_sweep(target, plan);
        r.assert_clean();
        done += r.points;
        per_mode[m] += r.points;
        if i % 20 == 0 {
            println!("vfs-conformance: long run: {done} points so far; last: {r}");
        }
        i += 1;
    }
    for (m, n) in JournalMode::ALL.iter().zip(per_mode) {
        println!(
            "vfs-conformance: long run on {}: {} {n} points, 0 integrity failures, 0 lost commits",
            target.label,
            m.name()
        );
    }
    println!(
        "vfs-conformance: long run on {}: {done} crash points in {:.1?}",
        target.label,
        start.elapsed()
    );
    assert!(done >= total, "ran out of plans at {done} points");
    done
}
