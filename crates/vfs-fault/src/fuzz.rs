//! A driver that reads arbitrary bytes as a sequence of VFS operations on a
//! [`Fault`] over a [`MemDisk`], checked against an independent model.
//!
//! It is meant for a `cargo fuzz` target:
//!
//! ```ignore
//! fuzz_target!(|data: &[u8]| {
//!     if let Err(divergence) = vfs_fault::fuzz::run_ops(data) {
//!         panic!("{divergence}");
//!     }
//! });
//! ```
//!
//! The function never panics on any input; it returns `Err` only when the
//! fault layer and the model disagree (a bug in one of them).

use std::collections::BTreeMap;
use std::fmt;

use vfs_core::{File, FileKind, FileName, Op, OpenAccess, OpenName, OpenOptions, SyncFlags, Vfs};

use crate::{Failure, Fault, FaultFile, MemDisk, OpSet, Rule, TearOutcome};

/// The paths the driver works on: a database with its journal and WAL in
/// one directory, and a super-journal in another.
const PATHS: [(&str, FileKind); 4] = [
    ("/fz/db", FileKind::MainDb),
    ("/fz/db-journal", FileKind::MainJournal),
    ("/fz/db-wal", FileKind::Wal),
    ("/other/super", FileKind::SuperJournal),
];
const MAX_HANDLES: usize = 8;
const MAX_OFFSET: u64 = 16 * 1024;
const MAX_LEN: usize = 2048;

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpsReport {
    /// Operations issued through the VFS and file API.
    pub operations: u64,
    /// Failures and tears injected.
    pub faults: u64,
    /// Power cuts.
    pub power_cuts: u64,
    /// Comparisons of bytes or existence against the model.
    pub checks: u64,
}

/// The model's and the layer's views differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence(pub String);

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault layer diverged from the model: {}", self.0)
    }
}

impl std::error::Error for Divergence {}

/// The model of one path: snapshots instead of undo logs.
#[derive(Clone, Debug, Default)]
struct MFile {
    live: Option<Vec<u8>>,
    synced: Vec<u8>,
    entry: Entry,
}

#[derive(Clone, Debug, Default)]
enum Entry {
    #[default]
    Absent,
    Live,
    Old(Vec<u8>),
}

struct Handle {
    file: FaultFile<MemDisk>,
    path: usize,
    dirsync: bool,
    stale: bool,
}

#[derive(Clone, Copy, Debug)]
enum Pending {
    Fail(Op),
    Tear { keep: usize, report_error: bool },
    Cut,
}

impl Pending {
    fn hits(self, op: Op) -> bool {
        match self {
            Pending::Fail(o) => o == op,
            Pending::Tear { .. } => op == Op::Write,
            Pending::Cut => OpSet::DURABILITY.contains(op),
        }
    }
}

struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Input<'_> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes([self.byte()?, self.byte()?]))
    }
}

struct Driver {
    disk: MemDisk,
    vfs: Fault<MemDisk>,
    ctl: crate::FaultController,
    model: Vec<MFile>,
    handles: Vec<Handle>,
    pending: Option<Pending>,
    off: bool,
    report: OpsReport,
}

fn fail(msg: String) -> Result<(), Divergence> {
    Err(Divergence(msg))
}

impl Driver {
    fn new() -> Driver {
        let disk = MemDisk::new();
        let vfs = Fault::new(disk.clone());
        let ctl = vfs.controller();
        Driver {
            disk,
            vfs,
            ctl,
            model: vec![MFile::default(); PATHS.len()],
            handles: Vec::new(),
            pending: None,
            off: false,
            report: OpsReport::default(),
        }
    }

    /// Whether an operation `op` (not on a stale handle, power on) is hit by
    /// the pending injection; consumes it.
    fn take_hit(&mut self, op: Op) -> Option<Pending> {
        if self.off {
            return None;
        }
        let p = self.pending.filter(|p| p.hits(op))?;
        self.pending = None;
        if let Pending::Cut = p {
            self.model_cut();
        } else {
            self.report.faults += 1;
        }
        Some(p)
    }

    fn model_cut(&mut self) {
        self.report.power_cuts += 1;
        self.off = true;
        for m in &mut self.model {
            let after = match &m.entry {
                Entry::Live => Some(m.synced.clone()),
                Entry::Old(img) => Some(img.clone()),
                Entry::Absent => None,
            };
            m.entry = if after.is_some() {
                Entry::Live
            } else {
                Entry::Absent
            };
            m.synced = after.clone().unwrap_or_default();
            m.live = after;
        }
        for h in &mut self.handles {
            h.stale = true;
        }
    }

    fn dir_sync(&mut self, path: usize) {
        let dir = dir(PATHS[path].0);
        for (i, m) in self.model.iter_mut().enumerate() {
            if self::dir(PATHS[i].0) == dir {
                m.entry = if m.live.is_some() {
                    Entry::Live
                } else {
                    Entry::Absent
                };
            }
        }
    }

    fn expect_err<T>(&self, what: &str, r: &vfs_core::Result<T>) -> Result<(), Divergence> {
        if r.is_ok() {
            return fail(format!("{what} succeeded but should have failed"));
        }
        Ok(())
    }

    fn expect_ok<T>(&self, what: &str, r: &vfs_core::Result<T>) -> Result<(), Divergence> {
        if let Err(e) = r {
            return fail(format!("{what} failed unexpectedly: {e}"));
        }
        Ok(())
    }

    /// Compares the disk with the model's live view.
    fn check_live(&mut self) -> Result<(), Divergence> {
        for (i, (path, _)) in PATHS.iter().enumerate() {
            self.report.checks += 1;
            let got = self.disk.contents(path);
            if got != self.model[i].live {
                return fail(format!(
                    "{path}: disk has {:?} bytes, model {:?}",
                    got.as_ref().map(Vec::len),
                    self.model[i].live.as_ref().map(Vec::len)
                ));
            }
        }
        Ok(())
    }

    fn step(&mut self, input: &mut Input<'_>) -> Option<Result<(), Divergence>> {
        let opcode = input.byte()? % 13;
        self.report.operations += 1;
        Some(match opcode {
            0 => {
                let p = input.byte()? as usize % PATHS.len();
                let create = input.byte()? % 2 == 0;
                self.open(p, create)
            }
            1 => {
                let h = input.byte()? as usize;
                if !self.handles.is_empty() {
                    let i = h % self.handles.len();
                    self.handles.remove(i);
                }
                Ok(())
            }
            2 => {
                let h = input.byte()? as usize;
                let off = u64::from(input.u16()?) % MAX_OFFSET;
                let len = usize::from(input.u16()?) % MAX_LEN + 1;
                let fill = input.byte()?;
                self.write(h, off, len, fill)
            }
            3 => {
                let h = input.byte()? as usize;
                let off = u64::from(input.u16()?) % MAX_OFFSET;
                let len = usize::from(input.u16()?) % MAX_LEN + 1;
                self.read(h, off, len)
            }
            4 => {
                let h = input.byte()? as usize;
                let size = u64::from(input.u16()?) % MAX_OFFSET;
                self.truncate(h, size)
            }
            5 => {
                let h = input.byte()? as usize;
                self.sync(h)
            }
            6 => {
                let h = input.byte()? as usize;
                self.size(h)
            }
            7 => {
                let p = input.byte()? as usize % PATHS.len();
                let sync_dir = input.byte()? % 2 == 0;
                self.delete(p, sync_dir)
            }
            8 => {
                let which = input.byte()?;
                if self.pending.is_none() {
                    let ops = [
                        Op::Write,
                        Op::Read,
                        Op::Sync,
                        Op::Truncate,
                        Op::FileSize,
                        Op::Open,
                        Op::Delete,
                    ];
                    let op = ops[which as usize % ops.len()];
                    self.ctl.add(Rule::fail(op, Failure::Io));
                    self.pending = Some(Pending::Fail(op));
                }
                Ok(())
            }
            9 => {
                let keep = usize::from(input.u16()?) % MAX_LEN;
                let report_error = input.byte()? % 2 == 0;
                if self.pending.is_none() {
                    let outcome = if report_error {
                        TearOutcome::ReportError(Failure::Io)
                    } else {
                        TearOutcome::ReportSuccess
                    };
                    self.ctl.add(Rule::tear(keep, outcome));
                    self.pending = Some(Pending::Tear { keep, report_error });
                }
                Ok(())
            }
            10 => {
                if self.pending.is_none() {
                    self.ctl.cut_power_at(1);
                    self.pending = Some(Pending::Cut);
                }
                Ok(())
            }
            11 => {
                if !self.off {
                    self.ctl.cut_power_now();
                    self.model_cut();
                }
                Ok(())
            }
            _ => self.restart_or_persist(input.byte()? % 2 == 0),
        })
    }

    fn handle(&mut self, h: usize) -> Option<usize> {
        if self.handles.is_empty() {
            None
        } else {
            Some(h % self.handles.len())
        }
    }

    fn open(&mut self, p: usize, create: bool) -> Result<(), Divergence> {
        let (path, kind) = PATHS[p];
        let access = if create {
            OpenAccess::Create
        } else {
            OpenAccess::ReadWrite
        };
        let r = self
            .vfs
            .open(&OpenName::new(path, kind), OpenOptions::new(kind, access));
        if self.off {
            return self.expect_err("open while the power is off", &r);
        }
        match self.take_hit(Op::Open) {
            Some(_) => return self.expect_err("open hit by a fault", &r),
            None if !create && self.model[p].live.is_none() => {
                return self.expect_err("open of a missing file", &r);
            }
            None => {}
        }
        let file = match r {
            Ok(f) => f,
            Err(e) => return fail(format!("open {path}: {e}")),
        };
        if self.model[p].live.is_none() {
            self.model[p].live = Some(Vec::new());
            self.model[p].synced = Vec::new();
        }
        if self.handles.len() == MAX_HANDLES {
            self.handles.remove(0);
        }
        self.handles.push(Handle {
            file,
            path: p,
            dirsync: create
                && matches!(
                    kind,
                    FileKind::MainJournal | FileKind::Wal | FileKind::SuperJournal
                ),
            stale: false,
        });
        Ok(())
    }

    fn write(&mut self, h: usize, off: u64, len: usize, fill: u8) -> Result<(), Divergence> {
        let Some(i) = self.handle(h) else {
            return Ok(());
        };
        let buf = vec![fill; len];
        let r = self.handles[i].file.write_at(&buf, off);
        if self.off || self.handles[i].stale {
            return self.expect_err("write on a dead handle", &r);
        }
        let p = self.handles[i].path;
        let applied = match self.take_hit(Op::Write) {
            Some(Pending::Tear { keep, report_error }) => {
                if report_error {
                    self.expect_err("torn write reporting an error", &r)?;
                } else {
                    self.expect_ok("torn write reporting success", &r)?;
                }
                keep.min(len)
            }
            Some(_) => return self.expect_err("write hit by a fault", &r),
            None => {
                self.expect_ok("write", &r)?;
                len
            }
        };
        if applied > 0
            && let Some(live) = &mut self.model[p].live
        {
            let end = off as usize + applied;
            if live.len() < end {
                live.resize(end, 0);
            }
            live[off as usize..end].fill(fill);
        }
        Ok(())
    }

    fn read(&mut self, h: usize, off: u64, len: usize) -> Result<(), Divergence> {
        let Some(i) = self.handle(h) else {
            return Ok(());
        };
        let mut buf = vec![0u8; len];
        let r = self.handles[i].file.read_at(&mut buf, off);
        if self.off || self.handles[i].stale {
            return self.expect_err("read on a dead handle", &r);
        }
        if self.take_hit(Op::Read).is_some() {
            return self.expect_err("read hit by a fault", &r);
        }
        let n = match r {
            Ok(n) => n,
            Err(e) => return fail(format!("read: {e}")),
        };
        let live = self.model[self.handles[i].path]
            .live
            .clone()
            .unwrap_or_default();
        let start = (off as usize).min(live.len());
        let end = (off as usize + len).min(live.len());
        self.report.checks += 1;
        if buf[..n] != live[start..end] {
            return fail(format!(
                "read of {len} at {off} on {}: {n} bytes differ from the model's {}",
                PATHS[self.handles[i].path].0,
                end - start
            ));
        }
        Ok(())
    }

    fn truncate(&mut self, h: usize, size: u64) -> Result<(), Divergence> {
        let Some(i) = self.handle(h) else {
            return Ok(());
        };
        let r = self.handles[i].file.truncate(size);
        if self.off || self.handles[i].stale {
            return self.expect_err("truncate on a dead handle", &r);
        }
        if self.take_hit(Op::Truncate).is_some() {
            return self.expect_err("truncate hit by a fault", &r);
        }
        self.expect_ok("truncate", &r)?;
        if let Some(live) = &mut self.model[self.handles[i].path].live {
            live.resize(size as usize, 0);
        }
        Ok(())
    }

    fn sync(&mut self, h: usize) -> Result<(), Divergence> {
        let Some(i) = self.handle(h) else {
            return Ok(());
        };
        let r = self.handles[i].file.sync(SyncFlags(2));
        if self.off || self.handles[i].stale {
            return self.expect_err("sync on a dead handle", &r);
        }
        if self.take_hit(Op::Sync).is_some() {
            return self.expect_err("sync hit by a fault", &r);
        }
        self.expect_ok("sync", &r)?;
        let p = self.handles[i].path;
        let m = &mut self.model[p];
        if let Some(live) = &m.live {
            m.synced = live.clone();
            m.entry = Entry::Live;
        }
        if self.handles[i].dirsync {
            self.handles[i].dirsync = false;
            self.dir_sync(p);
        }
        Ok(())
    }

    fn size(&mut self, h: usize) -> Result<(), Divergence> {
        let Some(i) = self.handle(h) else {
            return Ok(());
        };
        let r = self.handles[i].file.size();
        if self.off || self.handles[i].stale {
            return self.expect_err("size on a dead handle", &r);
        }
        if self.take_hit(Op::FileSize).is_some() {
            return self.expect_err("size hit by a fault", &r);
        }
        let want = self.model[self.handles[i].path]
            .live
            .as_ref()
            .map_or(0, |l| l.len() as u64);
        self.report.checks += 1;
        match r {
            Ok(n) if n == want => Ok(()),
            Ok(n) => fail(format!("size {n}, model {want}")),
            Err(e) => fail(format!("size: {e}")),
        }
    }

    fn delete(&mut self, p: usize, sync_dir: bool) -> Result<(), Divergence> {
        // Deleting an open file is legal, but the model keeps no orphans:
        // close the path's handles first.
        self.handles.retain(|h| h.path != p);
        let r = self.vfs.delete(FileName::new(PATHS[p].0), sync_dir);
        if self.off {
            return self.expect_err("delete while the power is off", &r);
        }
        if self.take_hit(Op::Delete).is_some() {
            return self.expect_err("delete hit by a fault", &r);
        }
        if self.model[p].live.is_none() {
            return self.expect_err("delete of a missing file", &r);
        }
        self.expect_ok("delete", &r)?;
        let m = &mut self.model[p];
        if let Entry::Live = m.entry {
            m.entry = Entry::Old(m.synced.clone());
        }
        m.live = None;
        m.synced = Vec::new();
        if sync_dir {
            self.dir_sync(p);
        }
        Ok(())
    }

    fn restart_or_persist(&mut self, persist: bool) -> Result<(), Divergence> {
        if self.off {
            self.check_live()?;
            if let Err(e) = self.ctl.restart() {
                return fail(format!("restart: {e}"));
            }
            self.off = false;
            // Handles from before the cut stay dead after the restart.
            for h in &mut self.handles {
                self.report.checks += 1;
                if h.file.size().is_ok() {
                    return fail("a handle from before the power cut still works".into());
                }
            }
            self.handles.clear();
            return Ok(());
        }
        if persist {
            if let Err(e) = self.ctl.persist_all() {
                return fail(format!("persist_all: {e}"));
            }
            for m in &mut self.model {
                if let Some(live) = &m.live {
                    m.synced = live.clone();
                    m.entry = Entry::Live;
                } else {
                    m.entry = Entry::Absent;
                }
            }
        }
        Ok(())
    }
}

fn dir(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(d, _)| d)
}

/// Interprets `data` as VFS operations (open, close, write, read, truncate,
/// sync, size, delete, fail-next, tear-next, cut-at-next, cut-now,
/// restart/persist) on a [`Fault`] over a [`MemDisk`], and checks every
/// read, size and post-crash state against a model that keeps snapshots
/// where the layer keeps undo logs.
///
/// Never panics. `Err` means the layer and the model disagree.
pub fn run_ops(data: &[u8]) -> Result<OpsReport, Divergence> {
    let mut d = Driver::new();
    let mut input = Input { data, pos: 0 };
    while let Some(r) = d.step(&mut input) {
        r?;
        d.check_live()?;
    }
    // Finish with a power cut and compare what survives.
    if !d.off {
        d.ctl.cut_power_now();
        d.model_cut();
    }
    d.handles.clear();
    d.check_live()?;
    d.ctl
        .restart()
        .map_err(|e| Divergence(format!("restart: {e}")))?;
    let counted: BTreeMap<&str, u64> = crate::rules::COUNTED_OPS
        .iter()
        .map(|op| (op.name(), d.ctl.op_count(*op)))
        .collect();
    if counted.values().sum::<u64>() != d.ctl.total_ops() {
        return Err(Divergence(
            "per-operation counts do not add up to the total".into(),
        ));
    }
    if d.ctl.faults_fired() != d.report.faults {
        return Err(Divergence(format!(
            "the layer injected {} faults, the model expected {}",
            d.ctl.faults_fired(),
            d.report.faults
        )));
    }
    Ok(d.report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::StdRng};

    #[test]
    fn seeded_random_inputs_never_diverge() {
        let mut totals = OpsReport::default();
        for seed in 0..300u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let len = rng.gen_range(0..3000);
            let data: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            let r = run_ops(&data).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            totals.operations += r.operations;
            totals.faults += r.faults;
            totals.power_cuts += r.power_cuts;
            totals.checks += r.checks;
        }
        println!("fuzz driver: {totals:?}");
        assert!(totals.power_cuts > 300, "{totals:?}");
        assert!(totals.faults > 100, "{totals:?}");
    }

    /// `VFS_FUZZ_INPUTS` (default 100,000) seeded random inputs.
    #[test]
    #[ignore = "long run: cargo test -p vfs-fault -- --ignored"]
    fn long_seeded_random_inputs() {
        let n: u64 = std::env::var("VFS_FUZZ_INPUTS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(100_000);
        let mut totals = OpsReport::default();
        for seed in 1_000_000..1_000_000 + n {
            let mut rng = StdRng::seed_from_u64(seed);
            let len = rng.gen_range(0..6000);
            let data: Vec<u8> = (0..len).map(|_| rng.r#gen()).collect();
            let r = run_ops(&data).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            totals.operations += r.operations;
            totals.faults += r.faults;
            totals.power_cuts += r.power_cuts;
            totals.checks += r.checks;
        }
        println!("fuzz driver, {n} inputs: {totals:?}");
    }

    #[test]
    fn empty_and_tiny_inputs_are_fine() {
        run_ops(&[]).unwrap();
        for b in 0..=255u8 {
            run_ops(&[b]).unwrap();
            run_ops(&[b, b, b]).unwrap();
        }
    }
}
