//! [`Fault`]: the shim, its files, and the shared [`FaultController`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use vfs_core::shm::{ShmLockOp, ShmRegion};
use vfs_core::{
    AccessCheck, Control, DeviceCharacteristics, Error, File, FileControl, FileKind, FileName,
    FileNameBuf, LockLevel, Op, OpenAccess, OpenName, OpenOptions, Result, SyncFlags, Vfs, codes,
};

use crate::model::{
    Durable, Live, Node, OnFile, Undo, dir_of, dir_sync, read_all, read_range, roll_back,
};
use crate::rules::{Action, COUNTED_OPS, OpSet, Rule, RuleId, TearOutcome, op_index};

/// How many [`FaultEvent`]s a controller keeps (the most recent ones).
pub const EVENT_LOG_CAPACITY: usize = 1024;

/// A fault-injection shim over any base VFS.
///
/// Every operation passes through to `B` unless a [`Rule`] of the shared
/// [`FaultController`] says otherwise; meanwhile the shim counts operations
/// and keeps what it needs to simulate a power cut. See the crate
/// documentation for the model and its limits.
///
/// ```
/// use vfs_core::{Native, Op, register};
/// use vfs_fault::{Failure, Fault, Rule};
///
/// let fault = Fault::new(Native::new().unwrap());
/// let ctl = fault.controller();
/// let reg = register("fault-doc", fault, false).unwrap();
/// let dir = tempfile::tempdir().unwrap();
/// let uri = format!("file:{}?vfs=fault-doc", dir.path().join("a.db").display());
/// let conn = rusqlite::Connection::open(uri).unwrap();
/// conn.execute_batch("CREATE TABLE t(x)").unwrap();
///
/// ctl.add(Rule::fail(Op::Sync, Failure::Io));
/// let err = conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
/// assert_eq!(err.sqlite_error().unwrap().extended_code, vfs_core::codes::SQLITE_IOERR_FSYNC);
/// // One-shot: the connection is still usable and nothing was committed.
/// conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
/// let n: i64 = conn.query_row("SELECT sum(x) FROM t", [], |r| r.get(0)).unwrap();
/// assert_eq!(n, 2);
/// drop(conn);
/// reg.unregister().unwrap();
/// ```
pub struct Fault<B: Vfs> {
    machine: Arc<Machine<B>>,
}

impl<B: Vfs> Fault<B> {
    /// Wraps `base`, with a fresh controller ([`Fault::controller`]).
    pub fn new(base: B) -> Fault<B> {
        Fault {
            machine: Arc::new(Machine {
                base,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The controller: add rules, cut the power, restart, read counters.
    /// Every call returns a handle to the same shared state.
    pub fn controller(&self) -> FaultController {
        FaultController {
            machine: self.machine.clone(),
        }
    }

    /// The base VFS.
    pub fn base(&self) -> &B {
        &self.machine.base
    }

    /// Syncs directory `dir` (`fsync` of the directory, a path without the
    /// trailing `/`): every creation, deletion and [`rename`](Fault::rename)
    /// of an entry directly in `dir` becomes durable. SQLite never does
    /// this itself except through `delete(path, sync_dir = true)` and the
    /// first sync of a journal or WAL; tools that replace files do.
    ///
    /// Counted and matched by rules as a `sync` whose path is `dir` (no
    /// file kind), so a power-cut sweep over [`OpSet::DURABILITY`] cuts
    /// before it too.
    pub fn sync_dir(&self, dir: impl AsRef<FileName>) -> Result<()> {
        let dir = dir.as_ref();
        let m = &self.machine;
        let mut st = m.state.lock();
        m.gate(&mut st, Op::Sync, None, Some(dir), None)?;
        dir_sync(&mut st.nodes, dir);
        st.nodes
            .retain(|_, n| n.live.is_some() || !matches!(n.durable, Durable::Absent));
        Ok(())
    }
}

impl<B: Vfs + Rename> Fault<B> {
    /// Renames `from` to `to`, replacing `to` if it exists, as `rename(2)`
    /// does: atomic for the processes that see the files, and durable only
    /// once the directory is synced ([`sync_dir`](Fault::sync_dir) of both
    /// directories when they differ). A power cut before that brings both
    /// entries back as the last directory sync left them: `from` with its
    /// durable bytes as of the rename, `to` with its own old durable bytes
    /// (or absent). The file's unsynced data moves with it and is lost at
    /// a cut as usual.
    ///
    /// Counted and matched by rules as a `delete` of `from` (it removes
    /// that directory entry), so a power-cut sweep over
    /// [`OpSet::DURABILITY`] cuts before it too.
    ///
    /// Close the handles this layer opened on `from` first: the file's
    /// durability record moves to `to`, and writes through an old handle
    /// would no longer be tracked.
    pub fn rename(&self, from: impl AsRef<FileName>, to: impl AsRef<FileName>) -> Result<()> {
        let (from, to) = (from.as_ref(), to.as_ref());
        let m = &self.machine;
        let mut st = m.state.lock();
        let kind = st.nodes.get(from).map(|n| n.kind);
        m.gate(&mut st, Op::Delete, kind, Some(from), None)?;
        let from_durable = m.durable_entry(&st, from)?;
        let to_durable = m.durable_entry(&st, to)?;
        m.base.rename(from, to)?;
        let st = &mut *st;
        let next = st.next_live + 1;
        let moved = st.nodes.remove(from);
        let (kind, live) = match moved {
            Some(Node {
                kind,
                live: Some(live),
                ..
            }) => (kind, live),
            // Never opened through this layer (or not tracked): a file that
            // was durable as it is.
            other => {
                st.next_live = next;
                (
                    other.map_or(FileKind::MainDb, |n| n.kind),
                    Live {
                        id: next,
                        undo: vec![],
                    },
                )
            }
        };
        st.nodes.insert(
            from.to_owned(),
            Node {
                kind,
                durable: from_durable,
                live: None,
            },
        );
        st.nodes.insert(
            to.to_owned(),
            Node {
                kind,
                durable: to_durable,
                live: Some(live),
            },
        );
        st.nodes
            .retain(|_, n| n.live.is_some() || !matches!(n.durable, Durable::Absent));
        Ok(())
    }
}

/// Renaming, for bases that can ([`Fault::rename`]): SQLite's VFS interface
/// has no rename, but tools that replace a database atomically need one.
pub trait Rename {
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &FileName, to: &FileName) -> Result<()>;
}

impl<T: Rename + ?Sized> Rename for Arc<T> {
    fn rename(&self, from: &FileName, to: &FileName) -> Result<()> {
        (**self).rename(from, to)
    }
}

/// `name` as a path of this machine (exact on Unix, where a path is bytes).
fn os_path(name: &FileName) -> Result<&std::path::Path> {
    #[cfg(unix)]
    return Ok(name.as_path());
    #[cfg(not(unix))]
    name.to_str().map(std::path::Path::new).ok_or_else(|| {
        Error::new(
            codes::SQLITE_CANTOPEN,
            format!("{name:?} is not a path of this system"),
        )
    })
}

/// `std::fs::rename` on the real file system.
impl Rename for vfs_core::Native {
    fn rename(&self, from: &FileName, to: &FileName) -> Result<()> {
        std::fs::rename(os_path(from)?, os_path(to)?).map_err(|e| {
            Error::new(
                codes::SQLITE_IOERR,
                format!("renaming {from:?} to {to:?}: {e}"),
            )
        })
    }
}

impl<B: Vfs + fmt::Debug> fmt::Debug for Fault<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault")
            .field("base", &self.machine.base)
            .finish()
    }
}

/// One injected fault or power cut, as recorded by the controller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultEvent {
    /// The 1-based index of the operation among all counted operations
    /// since the counters were last reset.
    pub index: u64,
    /// The operation.
    pub op: Op,
    /// The file's kind, when known.
    pub kind: Option<FileKind>,
    /// The file's path, when it has one.
    pub path: Option<FileNameBuf>,
    /// What happened.
    pub action: Action,
}

struct ActiveRule {
    id: RuleId,
    rule: Rule,
    seen: u64,
    fired: u64,
    done: bool,
}

#[derive(Default)]
struct State {
    off: bool,
    boot: u64,
    counts: [u64; COUNTED_OPS.len()],
    total: u64,
    rules: Vec<ActiveRule>,
    next_rule: u64,
    nodes: HashMap<FileNameBuf, Node>,
    next_live: u64,
    faults: u64,
    cuts: u64,
    restore_errors: Vec<String>,
    events: VecDeque<FaultEvent>,
}

impl State {
    fn event(&mut self, e: FaultEvent) {
        if self.events.len() == EVENT_LOG_CAPACITY {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn live_id(&mut self) -> u64 {
        self.next_live += 1;
        self.next_live
    }
}

/// What an operation that passed the gate does.
enum Go {
    Proceed,
    Tear { keep: usize, outcome: TearOutcome },
}

struct Machine<B: Vfs> {
    base: B,
    state: Mutex<State>,
}

fn off_error(op: Op, why: &str) -> Error {
    let code = op.default_code();
    let code = if code & 0xff == codes::SQLITE_IOERR {
        code
    } else {
        codes::SQLITE_IOERR
    };
    Error::new(code, format!("vfs-fault: {why}: {} refused", op.name()))
}

impl<B: Vfs> Machine<B> {
    /// Counts `op` and applies the first rule that fires. Runs with the state
    /// locked; a power cut happens right here.
    fn gate(
        &self,
        st: &mut State,
        op: Op,
        kind: Option<FileKind>,
        path: Option<&FileName>,
        boot: Option<u64>,
    ) -> Result<Go> {
        if st.off {
            return Err(off_error(op, "the power is off"));
        }
        if boot.is_some_and(|b| b != st.boot) {
            return Err(off_error(op, "file handle opened before a power cut"));
        }
        if let Some(i) = op_index(op) {
            st.counts[i] += 1;
        }
        st.total += 1;
        let index = st.total;
        let mut firing = None;
        for r in st.rules.iter_mut() {
            if r.done || !r.rule.matches(op, kind, path) {
                continue;
            }
            r.seen += 1;
            let fires = if r.rule.persistent && r.rule.action != Action::PowerCut {
                r.seen >= r.rule.nth
            } else {
                r.seen == r.rule.nth
            };
            if fires {
                r.fired += 1;
                if !r.rule.persistent || r.rule.action == Action::PowerCut {
                    r.done = true;
                }
                // Rules added later do not see an operation already hit.
                firing = Some(r.rule.action);
                break;
            }
        }
        let Some(action) = firing else {
            return Ok(Go::Proceed);
        };
        st.event(FaultEvent {
            index,
            op,
            kind,
            path: path.map(FileName::to_owned),
            action,
        });
        let what = format!(
            "{} #{index} on {} {}",
            op.name(),
            kind.map_or("file", FileKind::name),
            path.unwrap_or(FileName::new("<anonymous>"))
        );
        match action {
            Action::Fail(failure) => {
                st.faults += 1;
                Err(failure.error(format!("vfs-fault: injected failure of {what}")))
            }
            Action::Tear { keep, outcome } => {
                st.faults += 1;
                Ok(Go::Tear { keep, outcome })
            }
            Action::PowerCut => {
                self.cut(st);
                Err(off_error(op, &format!("power cut before {what}")))
            }
        }
    }

    /// What a power cut would leave at `path` if its directory entry
    /// changed now without a directory sync: the entry's durable bytes, or
    /// nothing.
    fn durable_entry(&self, st: &State, path: &FileName) -> Result<Durable> {
        match st.nodes.get(path) {
            Some(node) => match (&node.live, &node.durable) {
                (Some(live), Durable::Current) => {
                    let mut f = self.reopen(path, node.kind, OpenAccess::ReadWrite)?;
                    let mut bytes = read_all(&mut f)?;
                    drop(f);
                    roll_back(&mut bytes, &live.undo)?;
                    Ok(Durable::Old(bytes))
                }
                (_, durable) => Ok(durable.clone()),
            },
            None => {
                if self.base.access(path, AccessCheck::Exists)? {
                    let mut f = self.reopen(path, FileKind::MainDb, OpenAccess::ReadWrite)?;
                    Ok(Durable::Old(read_all(&mut f)?))
                } else {
                    Ok(Durable::Absent)
                }
            }
        }
    }

    /// Opens a file of the base by path for the model's own use.
    fn reopen(&self, path: &FileName, kind: FileKind, access: OpenAccess) -> Result<B::File> {
        self.base
            .open(&OpenName::new(path, kind), OpenOptions::new(kind, access))
    }

    /// The power cut: bring every path back to its durable state, then turn
    /// the machine off.
    fn cut(&self, st: &mut State) {
        st.cuts += 1;
        st.off = true;
        let mut paths: Vec<FileNameBuf> = st.nodes.keys().cloned().collect();
        paths.sort();
        for path in paths {
            let Some(node) = st.nodes.get(&path).cloned() else {
                continue;
            };
            let restored = self.restore(&path, &node);
            let exists = match restored {
                Ok(exists) => exists,
                Err(e) => {
                    st.restore_errors
                        .push(format!("restoring {path:?} after a power cut: {e}"));
                    node.live.is_some()
                }
            };
            if exists {
                let id = st.live_id();
                st.nodes.insert(
                    path,
                    Node {
                        kind: node.kind,
                        durable: Durable::Current,
                        live: Some(Live { id, undo: vec![] }),
                    },
                );
            } else {
                st.nodes.remove(&path);
            }
        }
    }

    /// Brings one path to its durable state; answers whether it exists.
    fn restore(&self, path: &FileName, node: &Node) -> Result<bool> {
        match (&node.live, &node.durable) {
            (Some(live), Durable::Current) => {
                if !live.undo.is_empty() {
                    let mut f = self.reopen(path, node.kind, OpenAccess::ReadWrite)?;
                    roll_back(&mut OnFile(&mut f), &live.undo)?;
                }
                Ok(true)
            }
            (Some(_), Durable::Absent) => {
                match self.base.delete(path, false) {
                    Ok(()) => {}
                    Err(e) if e.code_for(Op::Delete) == codes::SQLITE_IOERR_DELETE_NOENT => {}
                    Err(e) => return Err(e),
                }
                Ok(false)
            }
            (_, Durable::Old(image)) => {
                let mut f = self.reopen(path, node.kind, OpenAccess::Create)?;
                f.truncate(0)?;
                if !image.is_empty() {
                    f.write_at(image, 0)?;
                }
                Ok(true)
            }
            (None, _) => Ok(false),
        }
    }

    fn is_tracked(name: Option<&FileName>, opts: &OpenOptions) -> bool {
        name.is_some() && !opts.delete_on_close && !opts.kind.is_temporary()
    }
}

/// The shared handle that steers a [`Fault`] VFS: add and remove rules, cut
/// the power, restart, and read counters. Cheap to clone; every clone talks
/// to the same VFS.
#[derive(Clone)]
pub struct FaultController {
    machine: Arc<dyn Controls>,
}

impl fmt::Debug for FaultController {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultController")
            .field("powered", &self.is_powered())
            .field("total_ops", &self.total_ops())
            .field("faults_fired", &self.faults_fired())
            .field("power_cuts", &self.power_cuts())
            .finish()
    }
}

/// The type-independent face of a machine.
trait Controls: Send + Sync {
    fn lock(&self) -> MutexGuard<'_, State>;
    fn cut_now(&self);
    fn persist(&self) -> Result<()>;
}

impl<B: Vfs> Controls for Machine<B> {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock()
    }

    fn cut_now(&self) {
        let mut st = self.state.lock();
        if !st.off {
            self.cut(&mut st);
        }
    }

    fn persist(&self) -> Result<()> {
        let mut st = self.state.lock();
        if st.off {
            return Err(off_error(Op::Sync, "the power is off"));
        }
        let st = &mut *st;
        st.nodes.retain(|_, node| node.live.is_some());
        for node in st.nodes.values_mut() {
            node.durable = Durable::Current;
            if let Some(live) = &mut node.live {
                live.undo.clear();
            }
        }
        Ok(())
    }
}

impl FaultController {
    /// Adds a rule; operations are counted for it from now on.
    pub fn add(&self, rule: Rule) -> RuleId {
        let mut st = self.machine.lock();
        st.next_rule += 1;
        let id = RuleId(st.next_rule);
        st.rules.push(ActiveRule {
            id,
            rule,
            seen: 0,
            fired: 0,
            done: false,
        });
        id
    }

    /// Removes a rule; answers whether it was there.
    pub fn remove(&self, id: RuleId) -> bool {
        let mut st = self.machine.lock();
        let before = st.rules.len();
        st.rules.retain(|r| r.id != id);
        st.rules.len() != before
    }

    /// Removes every rule.
    pub fn clear_rules(&self) {
        self.machine.lock().rules.clear();
    }

    /// How many times rule `id` fired (0 for an unknown id).
    pub fn fired(&self, id: RuleId) -> u64 {
        self.machine
            .lock()
            .rules
            .iter()
            .find(|r| r.id == id)
            .map_or(0, |r| r.fired)
    }

    /// How many operations rule `id` has seen (matched) so far.
    pub fn seen(&self, id: RuleId) -> u64 {
        self.machine
            .lock()
            .rules
            .iter()
            .find(|r| r.id == id)
            .map_or(0, |r| r.seen)
    }

    /// Cuts the power just before the `n`th operation in
    /// [`OpSet::DURABILITY`] from now (shorthand for
    /// `add(Rule::power_cut(OpSet::DURABILITY).nth(n))`).
    pub fn cut_power_at(&self, n: u64) -> RuleId {
        self.add(Rule::power_cut(OpSet::DURABILITY).nth(n))
    }

    /// Cuts the power now (a no-op when it is already off).
    pub fn cut_power_now(&self) {
        self.machine.cut_now();
    }

    /// Turns the machine back on after a power cut. Files opened before the
    /// cut stay dead (every operation on them fails); open them again.
    ///
    /// Returns an error if restoring the durable state failed during the
    /// cut (the base refused a write, say): then the files are not in a
    /// state a real power cut could produce, and a test should fail.
    pub fn restart(&self) -> Result<()> {
        let mut st = self.machine.lock();
        if st.off {
            st.off = false;
            st.boot += 1;
        }
        if st.restore_errors.is_empty() {
            Ok(())
        } else {
            let all = std::mem::take(&mut st.restore_errors).join("; ");
            Err(Error::new(codes::SQLITE_IOERR, all))
        }
    }

    /// Whether the machine is on.
    pub fn is_powered(&self) -> bool {
        !self.machine.lock().off
    }

    /// Declares everything durable now, as if every file and directory had
    /// been synced (handy after setting up a test database). Fails while the
    /// power is off.
    pub fn persist_all(&self) -> Result<()> {
        self.machine.persist()
    }

    /// Operations of kind `op` counted so far.
    pub fn op_count(&self, op: Op) -> u64 {
        op_index(op).map_or(0, |i| self.machine.lock().counts[i])
    }

    /// Operations in `set` counted so far.
    pub fn count(&self, set: OpSet) -> u64 {
        let st = self.machine.lock();
        set.ops().filter_map(op_index).map(|i| st.counts[i]).sum()
    }

    /// Every counted operation so far.
    pub fn total_ops(&self) -> u64 {
        self.machine.lock().total
    }

    /// Resets the operation counters (not the rules' own counts).
    pub fn reset_counts(&self) {
        let mut st = self.machine.lock();
        st.counts = [0; COUNTED_OPS.len()];
        st.total = 0;
    }

    /// Failures and tears injected so far (power cuts not included).
    pub fn faults_fired(&self) -> u64 {
        self.machine.lock().faults
    }

    /// Power cuts so far.
    pub fn power_cuts(&self) -> u64 {
        self.machine.lock().cuts
    }

    /// The most recent injected faults and power cuts (up to
    /// [`EVENT_LOG_CAPACITY`]), oldest first.
    pub fn events(&self) -> Vec<FaultEvent> {
        self.machine.lock().events.iter().cloned().collect()
    }

    /// Forgets the recorded events.
    pub fn clear_events(&self) {
        self.machine.lock().events.clear();
    }

    /// Paths a power cut now would change (unsynced data, or a creation or
    /// deletion whose directory entry is not durable), sorted.
    pub fn unsynced_paths(&self) -> Vec<FileNameBuf> {
        let st = self.machine.lock();
        let mut v: Vec<FileNameBuf> = st
            .nodes
            .iter()
            .filter(|(_, n)| n.has_unsynced())
            .map(|(p, _)| p.clone())
            .collect();
        v.sort();
        v
    }

    /// Bytes of pre-images held to undo unsynced changes.
    pub fn undo_bytes(&self) -> usize {
        let st = self.machine.lock();
        st.nodes
            .values()
            .filter_map(|n| n.live.as_ref())
            .flat_map(|l| l.undo.iter())
            .map(Undo::bytes)
            .sum()
    }
}

impl<B: Vfs> Vfs for Fault<B> {
    type File = FaultFile<B>;

    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<FaultFile<B>> {
        let m = &self.machine;
        let mut st = m.state.lock();
        let path = name.path();
        m.gate(&mut st, Op::Open, Some(opts.kind), path, None)?;
        let tracked = Machine::<B>::is_tracked(path, &opts);
        let existed = match path {
            Some(p) if tracked => m.base.access(p, AccessCheck::Exists)?,
            _ => false,
        };
        let inner = m.base.open(name, opts)?;
        let mut live_id = None;
        if let (true, Some(p)) = (tracked, path) {
            let st = &mut *st;
            let next = st.next_live + 1;
            let node = st.nodes.entry(p.to_owned()).or_insert_with(|| Node {
                kind: opts.kind,
                durable: if existed {
                    Durable::Current
                } else {
                    Durable::Absent
                },
                live: None,
            });
            node.kind = opts.kind;
            let fresh = match &node.live {
                // Another handle has it open (or it was created earlier and
                // is still there): share its record.
                Some(_) if existed => false,
                // We thought it was live but the base lost it (deleted
                // behind our back): a new file whose entry is not durable.
                Some(_) => {
                    node.durable = Durable::Absent;
                    true
                }
                None => {
                    if existed && matches!(node.durable, Durable::Absent) {
                        // Created outside this layer's view: assume durable.
                        node.durable = Durable::Current;
                    }
                    true
                }
            };
            if fresh {
                node.live = Some(Live {
                    id: next,
                    undo: vec![],
                });
                st.next_live = next;
            }
            live_id = node.live.as_ref().map(|l| l.id);
        }
        let dirsync = opts.access == OpenAccess::Create
            && matches!(
                opts.kind,
                FileKind::MainJournal | FileKind::Wal | FileKind::SuperJournal
            );
        Ok(FaultFile {
            inner,
            machine: m.clone(),
            path: path.map(FileName::to_owned),
            kind: opts.kind,
            live_id,
            dirsync,
            boot: st.boot,
        })
    }

    fn delete(&self, path: &FileName, sync_dir: bool) -> Result<()> {
        let m = &self.machine;
        let mut st = m.state.lock();
        let kind = st.nodes.get(path).map(|n| n.kind);
        m.gate(&mut st, Op::Delete, kind, Some(path), None)?;
        // The durable bytes the deleted entry keeps until a directory sync.
        let mut image = None;
        match st.nodes.get(path) {
            Some(node) => {
                if let (Some(live), Durable::Current) = (&node.live, &node.durable) {
                    let mut f = m.reopen(path, node.kind, OpenAccess::ReadWrite)?;
                    let mut bytes = read_all(&mut f)?;
                    drop(f);
                    roll_back(&mut bytes, &live.undo)?;
                    image = Some(bytes);
                }
            }
            None => {
                // A file this layer never opened: it exists durably, if at all.
                if m.base.access(path, AccessCheck::Exists)? {
                    let mut f = m.reopen(path, FileKind::MainDb, OpenAccess::ReadWrite)?;
                    image = Some(read_all(&mut f)?);
                }
            }
        }
        m.base.delete(path, sync_dir)?;
        let st = &mut *st;
        let node = st.nodes.entry(path.to_owned()).or_insert_with(|| Node {
            kind: FileKind::MainDb,
            durable: Durable::Absent,
            live: None,
        });
        if let Some(bytes) = image {
            node.durable = Durable::Old(bytes);
        }
        node.live = None;
        if sync_dir {
            dir_sync(&mut st.nodes, dir_of(path));
        }
        st.nodes
            .retain(|_, n| n.live.is_some() || !matches!(n.durable, Durable::Absent));
        Ok(())
    }

    fn access(&self, path: &FileName, check: AccessCheck) -> Result<bool> {
        let m = &self.machine;
        let mut st = m.state.lock();
        let kind = st.nodes.get(path).map(|n| n.kind);
        m.gate(&mut st, Op::Access, kind, Some(path), None)?;
        m.base.access(path, check)
    }

    vfs_core::forward_vfs!(machine.base, except delete, access);
}

/// A file opened through [`Fault`].
pub struct FaultFile<B: Vfs> {
    inner: B::File,
    machine: Arc<Machine<B>>,
    path: Option<FileNameBuf>,
    kind: FileKind,
    /// The incarnation this handle writes to, for files whose durability is
    /// tracked.
    live_id: Option<u64>,
    /// The first successful sync also syncs the directory (unix's DIRSYNC
    /// for journals, WALs and super-journals opened with create).
    dirsync: bool,
    boot: u64,
}

impl<B: Vfs> fmt::Debug for FaultFile<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultFile")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .finish()
    }
}

impl<B: Vfs> FaultFile<B> {
    /// The base file.
    pub fn inner(&self) -> &B::File {
        &self.inner
    }

    /// The file's kind.
    pub fn kind(&self) -> FileKind {
        self.kind
    }

    fn gate(&self, st: &mut State, op: Op) -> Result<Go> {
        self.machine.gate(
            st,
            op,
            Some(self.kind),
            self.path.as_deref(),
            Some(self.boot),
        )
    }

    /// The live record this handle writes to, if tracked and still current.
    fn live<'s>(&self, st: &'s mut State) -> Option<&'s mut Live> {
        let id = self.live_id?;
        let node = st.nodes.get_mut(self.path.as_deref()?)?;
        node.live.as_mut().filter(|l| l.id == id)
    }

    /// Whether releasing operations should reach the base regardless of
    /// power (a dead process's locks go away).
    fn dead(&self, st: &State) -> bool {
        st.off || st.boot != self.boot
    }
}

impl<B: Vfs> File for FaultFile<B> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let m = self.machine.clone();
        let mut st = m.state.lock();
        self.gate(&mut st, Op::Read)?;
        self.inner.read_at(buf, offset)
    }

    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let m = self.machine.clone();
        let mut st = m.state.lock();
        let go = self.gate(&mut st, Op::Write)?;
        if self.live(&mut st).is_some() {
            let size_before = self.inner.size()?;
            let old = if offset < size_before {
                let n = ((size_before - offset) as usize).min(buf.len());
                read_range(&mut self.inner, offset, n)?
            } else {
                Vec::new()
            };
            if let Some(live) = self.live(&mut st) {
                live.undo.push(Undo::Write {
                    offset,
                    size_before,
                    old,
                });
            }
        }
        match go {
            Go::Proceed => self.inner.write_at(buf, offset),
            Go::Tear { keep, outcome } => {
                let keep = keep.min(buf.len());
                if keep > 0 {
                    self.inner.write_at(&buf[..keep], offset)?;
                }
                match outcome {
                    TearOutcome::ReportSuccess => Ok(()),
                    TearOutcome::ReportError(f) => Err(f.error(format!(
                        "vfs-fault: torn write of {} bytes at {offset} on {} ({keep} written)",
                        buf.len(),
                        self.path.as_deref().unwrap_or(FileName::new("<anonymous>"))
                    ))),
                }
            }
        }
    }

    fn truncate(&mut self, size: u64) -> Result<()> {
        let m = self.machine.clone();
        let mut st = m.state.lock();
        self.gate(&mut st, Op::Truncate)?;
        if self.live(&mut st).is_some() {
            let size_before = self.inner.size()?;
            let removed = if size < size_before {
                read_range(&mut self.inner, size, (size_before - size) as usize)?
            } else {
                Vec::new()
            };
            if let Some(live) = self.live(&mut st) {
                live.undo.push(Undo::Resize {
                    size_before,
                    size_after: size,
                    removed,
                });
            }
        }
        self.inner.truncate(size)
    }

    fn sync(&mut self, flags: SyncFlags) -> Result<()> {
        let m = self.machine.clone();
        let mut st = m.state.lock();
        self.gate(&mut st, Op::Sync)?;
        self.inner.sync(flags)?;
        if let Some(live) = self.live(&mut st) {
            live.undo.clear();
            let path = self.path.clone().unwrap_or_default();
            if let Some(node) = st.nodes.get_mut(path.as_file_name()) {
                node.durable = Durable::Current;
            }
            if self.dirsync {
                dir_sync(&mut st.nodes, dir_of(&path));
            }
        }
        self.dirsync = false;
        Ok(())
    }

    fn size(&mut self) -> Result<u64> {
        let m = self.machine.clone();
        let mut st = m.state.lock();
        self.gate(&mut st, Op::FileSize)?;
        self.inner.size()
    }

    fn lock(&mut self, level: LockLevel) -> Result<()> {
        let m = self.machine.clone();
        let mut st = m.state.lock();
        self.gate(&mut st, Op::Lock)?;
        self.inner.lock(level)
    }

    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        let m = self.machine.clone();
        let mut st = m.state.lock();
        if self.dead(&st) {
            // A dead machine's locks vanish: release them in the base.
            return self.inner.unlock(level);
        }
        self.gate(&mut st, Op::Unlock)?;
        self.inner.unlock(level)
    }

    fn check_reserved_lock(&mut self) -> Result<bool> {
        let m = self.machine.clone();
        let mut st = m.state.lock();
        self.gate(&mut st, Op::CheckReservedLock)?;
        self.inner.check_reserved_lock()
    }

    fn file_control(&mut self, ctl: &mut FileControl<'_>) -> Result<()> {
        let is_hint = matches!(ctl.control(), Control::SizeHint(_));
        if !is_hint {
            return self.inner.file_control(ctl);
        }
        // A size hint may grow the file (the native base preallocates with a
        // chunk size): record the growth like a truncate.
        let m = self.machine.clone();
        let mut st = m.state.lock();
        if self.dead(&st) {
            return Err(off_error(Op::Truncate, "the power is off"));
        }
        if self.live(&mut st).is_none() {
            return self.inner.file_control(ctl);
        }
        let size_before = self.inner.size()?;
        let r = self.inner.file_control(ctl);
        let size_after = self.inner.size()?;
        if size_after != size_before
            && let Some(live) = self.live(&mut st)
        {
            live.undo.push(Undo::Resize {
                size_before,
                size_after,
                removed: Vec::new(),
            });
        }
        r
    }

    fn device_characteristics(&self) -> DeviceCharacteristics {
        // Torn writes and power cuts break every atomicity promise.
        let atomic_bits = 0x1ff | DeviceCharacteristics::BATCH_ATOMIC;
        DeviceCharacteristics(self.inner.device_characteristics().0 & !atomic_bits)
    }

    fn shm_map(&mut self, region: u32, size: u32, extend: bool) -> Result<Option<ShmRegion>> {
        let m = self.machine.clone();
        let mut st = m.state.lock();
        self.gate(&mut st, Op::ShmMap)?;
        self.inner.shm_map(region, size, extend)
    }

    fn shm_lock(&mut self, offset: u32, n: u32, op: ShmLockOp) -> Result<()> {
        let m = self.machine.clone();
        let mut st = m.state.lock();
        let release = matches!(op, ShmLockOp::UnlockShared | ShmLockOp::UnlockExclusive);
        if release && self.dead(&st) {
            return self.inner.shm_lock(offset, n, op);
        }
        self.gate(&mut st, Op::ShmLock)?;
        self.inner.shm_lock(offset, n, op)
    }

    // Sector size, read-only status, the shared-memory capability, barriers
    // and unmapping go straight to the base (shared memory is not on the
    // medium: unmapping always succeeds as the base says). Mapped reads do
    // not: `read_at` is the layer's own, so the macro lends no page
    // (`can_fetch` is false) and every read passes the fault rules.
    vfs_core::forward_file!(
        inner,
        except read_at,
        write_at,
        truncate,
        sync,
        size,
        lock,
        unlock,
        check_reserved_lock,
        file_control,
        device_characteristics,
        shm_map,
        shm_lock
    );
}
