//! What to inject and when: operation sets, failures, tears and rules.

use std::fmt;

use vfs_core::{Error, FileKind, FileName, Op, codes};

/// A set of VFS operations (a bit set over [`Op`]).
///
/// Only the operations the fault layer counts can be members: `open`,
/// `delete`, `access`, `read`, `write`, `truncate`, `sync`, `file_size`,
/// `lock`, `unlock`, `check_reserved_lock`, `shm_map` and `shm_lock` (the
/// last two only reach the fault layer over a base that forwards shared
/// memory, such as [`Native`](vfs_core::Native)).
///
/// ```
/// use vfs_core::Op;
/// use vfs_fault::OpSet;
/// let s = OpSet::of(&[Op::Write, Op::Sync]);
/// assert!(s.contains(Op::Write) && !s.contains(Op::Read));
/// assert!(OpSet::DURABILITY.contains(Op::Truncate));
/// assert_eq!(OpSet::from(Op::Read), OpSet::of(&[Op::Read]));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OpSet(u32);

/// Every operation the fault layer counts, in a stable order.
pub const COUNTED_OPS: [Op; 13] = [
    Op::Open,
    Op::Delete,
    Op::Access,
    Op::Read,
    Op::Write,
    Op::Truncate,
    Op::Sync,
    Op::FileSize,
    Op::Lock,
    Op::Unlock,
    Op::CheckReservedLock,
    Op::ShmMap,
    Op::ShmLock,
];

pub(crate) fn op_index(op: Op) -> Option<usize> {
    COUNTED_OPS.iter().position(|o| *o == op)
}

impl OpSet {
    /// No operation.
    pub const EMPTY: OpSet = OpSet(0);
    /// Every counted operation.
    pub const ALL: OpSet = OpSet((1 << COUNTED_OPS.len()) - 1);
    /// The operations that change what is on the medium or in its
    /// directory: `open`, `write`, `truncate`, `sync` and `delete`. A power
    /// cut before any other operation leaves the same durable state as a cut
    /// before the next one of these, so crash sweeps count these.
    pub const DURABILITY: OpSet = OpSet(
        (1 << 0) // open
            | (1 << 1) // delete
            | (1 << 4) // write
            | (1 << 5) // truncate
            | (1 << 6), // sync
    );
    /// The data operations SQLite reports to the application when they fail:
    /// `read`, `write`, `truncate`, `sync`, `file_size`.
    pub const DATA: OpSet = OpSet((1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7));

    /// The set of the given operations (operations the layer does not count
    /// are ignored).
    pub fn of(ops: &[Op]) -> OpSet {
        ops.iter().fold(OpSet::EMPTY, |s, op| s.with(*op))
    }

    /// This set plus `op`.
    pub fn with(self, op: Op) -> OpSet {
        match op_index(op) {
            Some(i) => OpSet(self.0 | (1 << i)),
            None => self,
        }
    }

    /// This set without `op`.
    pub fn without(self, op: Op) -> OpSet {
        match op_index(op) {
            Some(i) => OpSet(self.0 & !(1 << i)),
            None => self,
        }
    }

    /// Whether `op` is a member.
    pub fn contains(self, op: Op) -> bool {
        op_index(op).is_some_and(|i| self.0 & (1 << i) != 0)
    }

    /// The members, in [`COUNTED_OPS`] order.
    pub fn ops(self) -> impl Iterator<Item = Op> {
        COUNTED_OPS.into_iter().filter(move |op| self.contains(*op))
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl From<Op> for OpSet {
    fn from(op: Op) -> OpSet {
        OpSet::EMPTY.with(op)
    }
}

impl fmt::Debug for OpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.ops().map(Op::name)).finish()
    }
}

/// The error an injected failure returns.
///
/// ```
/// use vfs_core::{Op, codes};
/// use vfs_fault::Failure;
/// // A plain I/O error takes the failing operation's own code.
/// assert_eq!(Failure::Io.error("x").code_for(Op::Sync), codes::SQLITE_IOERR_FSYNC);
/// assert_eq!(Failure::full().error("x").code_for(Op::Write), codes::SQLITE_FULL);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A plain I/O error: SQLite sees the operation's default code
    /// (`SQLITE_IOERR_READ`, `SQLITE_IOERR_WRITE`, `SQLITE_IOERR_FSYNC`,
    /// `SQLITE_IOERR_TRUNCATE`, `SQLITE_IOERR_FSTAT`, `SQLITE_IOERR_LOCK`,
    /// `SQLITE_IOERR_DELETE`, `SQLITE_CANTOPEN` for open, …).
    Io,
    /// An explicit SQLite result code (primary or extended).
    Code(i32),
}

impl Failure {
    /// `SQLITE_FULL`: the medium is full.
    pub fn full() -> Failure {
        Failure::Code(codes::SQLITE_FULL)
    }

    /// `SQLITE_BUSY`: another process holds a lock (use on `lock`).
    pub fn busy() -> Failure {
        Failure::Code(codes::SQLITE_BUSY)
    }

    /// The [`Error`] returned, with `message`.
    pub fn error(self, message: impl Into<String>) -> Error {
        match self {
            Failure::Io => Error::from(std::io::Error::other(message.into())),
            Failure::Code(code) => Error::new(code, message.into()),
        }
    }
}

/// What a torn write reports after writing its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TearOutcome {
    /// Success, although only the prefix was written: silent data loss, as a
    /// misbehaving disk would cause. Expect corruption (or a checksum layer
    /// catching it) afterwards.
    ReportSuccess,
    /// The given failure: the file holds the prefix of the new data and the
    /// old data after it; SQLite must recover.
    ReportError(Failure),
}

/// What a rule does when it fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// The operation does not reach the base and returns this failure.
    Fail(Failure),
    /// Writes only: the first `keep` bytes (clamped to the write's length)
    /// reach the base, then the write reports `outcome`. On any other
    /// operation a tear rule never matches.
    Tear {
        /// Bytes of the write that reach the base.
        keep: usize,
        /// What the write reports.
        outcome: TearOutcome,
    },
    /// A power cut just before the operation: the operation does not happen,
    /// every unsynced change is undone (see the crate documentation), and
    /// the machine is off until [`FaultController::restart`](crate::FaultController::restart).
    PowerCut,
}

/// One injection: which operations it watches, which of them it hits, and
/// what it does.
///
/// Operations are counted per rule from the moment the rule is added, so
/// `nth(1)` is "the next matching operation".
///
/// ```
/// use vfs_core::{FileKind, Op};
/// use vfs_fault::{Failure, Rule, TearOutcome};
/// // The third sync of a WAL file fails with SQLITE_IOERR_FSYNC, once.
/// let a = Rule::fail(Op::Sync, Failure::Io).nth(3).file_kind(FileKind::Wal);
/// // Every write from the tenth on answers SQLITE_FULL.
/// let b = Rule::fail(Op::Write, Failure::full()).nth(10).persistent();
/// // The next write to the main database keeps one 512-byte sector, then fails.
/// let c = Rule::tear(512, TearOutcome::ReportError(Failure::Io)).file_kind(FileKind::MainDb);
/// # let _ = (a, b, c);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub(crate) ops: OpSet,
    pub(crate) file_kind: Option<FileKind>,
    pub(crate) path_contains: Option<String>,
    pub(crate) nth: u64,
    pub(crate) persistent: bool,
    pub(crate) action: Action,
}

impl Rule {
    /// A rule that fails the next operation in `ops` with `failure`.
    pub fn fail(ops: impl Into<OpSet>, failure: Failure) -> Rule {
        Rule::new(ops.into(), Action::Fail(failure))
    }

    /// A rule that tears the next write: `keep` bytes reach the base, then
    /// the write reports `outcome`.
    pub fn tear(keep: usize, outcome: TearOutcome) -> Rule {
        Rule::new(OpSet::from(Op::Write), Action::Tear { keep, outcome })
    }

    /// A rule that cuts the power just before the next operation in `ops`
    /// (usually [`OpSet::DURABILITY`]).
    pub fn power_cut(ops: impl Into<OpSet>) -> Rule {
        Rule::new(ops.into(), Action::PowerCut)
    }

    /// A rule with any action.
    pub fn new(ops: OpSet, action: Action) -> Rule {
        Rule {
            ops,
            file_kind: None,
            path_contains: None,
            nth: 1,
            persistent: false,
            action,
        }
    }

    /// Fire at the `n`th matching operation (1-based; 0 counts as 1).
    pub fn nth(mut self, n: u64) -> Rule {
        self.nth = n.max(1);
        self
    }

    /// Match only files of this kind. Operations without a file (`access`,
    /// and `delete` of a file the layer never saw opened) have no kind and
    /// never match a kind filter.
    pub fn file_kind(mut self, kind: FileKind) -> Rule {
        self.file_kind = Some(kind);
        self
    }

    /// Match only files whose path contains `fragment`.
    pub fn path_contains(mut self, fragment: impl Into<String>) -> Rule {
        self.path_contains = Some(fragment.into());
        self
    }

    /// Keep firing at the `n`th matching operation and every one after it
    /// (until the rule is removed). A power-cut rule fires once regardless.
    pub fn persistent(mut self) -> Rule {
        self.persistent = true;
        self
    }

    /// Fire once, at the `n`th matching operation (the default).
    pub fn once(mut self) -> Rule {
        self.persistent = false;
        self
    }

    /// The action.
    pub fn action(&self) -> Action {
        self.action
    }

    pub(crate) fn matches(&self, op: Op, kind: Option<FileKind>, path: Option<&FileName>) -> bool {
        if !self.ops.contains(op) {
            return false;
        }
        if matches!(self.action, Action::Tear { .. }) && op != Op::Write {
            return false;
        }
        if let Some(want) = self.file_kind
            && kind != Some(want)
        {
            return false;
        }
        if let Some(frag) = &self.path_contains
            && !path.is_some_and(|p| contains(p.as_bytes(), frag.as_bytes()))
        {
            return false;
        }
        true
    }
}

/// Whether `fragment` occurs in `bytes` (an empty fragment always does).
fn contains(bytes: &[u8], fragment: &[u8]) -> bool {
    fragment.is_empty() || bytes.windows(fragment.len()).any(|w| w == fragment)
}

/// Identifies a rule added to a controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RuleId(pub(crate) u64);
