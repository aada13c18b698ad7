//! Plain types of the VFS interface: file kinds, open flags, lock levels.

use libsqlite3_sys as ffi;

/// What SQLite is opening: the `SQLITE_OPEN_*` file-type bit of `xOpen`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileKind {
    /// A main database file.
    MainDb,
    /// The rollback journal of a main database.
    MainJournal,
    /// A temporary database (the `temp` schema).
    TempDb,
    /// The rollback journal of a temporary database.
    TempJournal,
    /// A transient database (sorter, materialised views, `VACUUM`).
    TransientDb,
    /// A statement sub-journal.
    SubJournal,
    /// A super-journal (multi-database commit).
    SuperJournal,
    /// A write-ahead log.
    Wal,
}

impl FileKind {
    /// Every kind, in a stable order (handy for per-kind tables).
    pub const ALL: [FileKind; 8] = [
        FileKind::MainDb,
        FileKind::MainJournal,
        FileKind::TempDb,
        FileKind::TempJournal,
        FileKind::TransientDb,
        FileKind::SubJournal,
        FileKind::SuperJournal,
        FileKind::Wal,
    ];

    /// Decodes the file-type bit of SQLite's open flags.
    pub fn from_flags(flags: i32) -> Option<FileKind> {
        Some(match flags & 0x000F_FF00 {
            f if f & ffi::SQLITE_OPEN_MAIN_DB != 0 => FileKind::MainDb,
            f if f & ffi::SQLITE_OPEN_MAIN_JOURNAL != 0 => FileKind::MainJournal,
            f if f & ffi::SQLITE_OPEN_TEMP_DB != 0 => FileKind::TempDb,
            f if f & ffi::SQLITE_OPEN_TEMP_JOURNAL != 0 => FileKind::TempJournal,
            f if f & ffi::SQLITE_OPEN_TRANSIENT_DB != 0 => FileKind::TransientDb,
            f if f & ffi::SQLITE_OPEN_SUBJOURNAL != 0 => FileKind::SubJournal,
            f if f & ffi::SQLITE_OPEN_SUPER_JOURNAL != 0 => FileKind::SuperJournal,
            f if f & ffi::SQLITE_OPEN_WAL != 0 => FileKind::Wal,
            _ => return None,
        })
    }

    /// The `SQLITE_OPEN_*` bit of this kind.
    pub fn flag(self) -> i32 {
        match self {
            FileKind::MainDb => ffi::SQLITE_OPEN_MAIN_DB,
            FileKind::MainJournal => ffi::SQLITE_OPEN_MAIN_JOURNAL,
            FileKind::TempDb => ffi::SQLITE_OPEN_TEMP_DB,
            FileKind::TempJournal => ffi::SQLITE_OPEN_TEMP_JOURNAL,
            FileKind::TransientDb => ffi::SQLITE_OPEN_TRANSIENT_DB,
            FileKind::SubJournal => ffi::SQLITE_OPEN_SUBJOURNAL,
            FileKind::SuperJournal => ffi::SQLITE_OPEN_SUPER_JOURNAL,
            FileKind::Wal => ffi::SQLITE_OPEN_WAL,
        }
    }

    /// A short name (`"main-db"`, `"wal"`, …).
    pub fn name(self) -> &'static str {
        match self {
            FileKind::MainDb => "main-db",
            FileKind::MainJournal => "main-journal",
            FileKind::TempDb => "temp-db",
            FileKind::TempJournal => "temp-journal",
            FileKind::TransientDb => "transient-db",
            FileKind::SubJournal => "sub-journal",
            FileKind::SuperJournal => "super-journal",
            FileKind::Wal => "wal",
        }
    }

    /// Whether the file holds database pages laid out page by page
    /// (main, temp and transient databases).
    pub fn is_database(self) -> bool {
        matches!(
            self,
            FileKind::MainDb | FileKind::TempDb | FileKind::TransientDb
        )
    }

    /// Whether the file is private scratch space of one connection that
    /// SQLite deletes on close (temp and transient databases and journals,
    /// sub-journals).
    pub fn is_temporary(self) -> bool {
        matches!(
            self,
            FileKind::TempDb | FileKind::TempJournal | FileKind::TransientDb | FileKind::SubJournal
        )
    }
}

/// Reads a boolean as SQLite's URI parameters and pragmas spell it:
/// `1`, `yes`, `true`, `on` or `0`, `no`, `false`, `off`, in any case, with
/// surrounding spaces ignored; `None` for anything else.
///
/// ```
/// assert_eq!(vfs_core::parse_bool(" ON"), Some(true));
/// assert_eq!(vfs_core::parse_bool("0"), Some(false));
/// assert_eq!(vfs_core::parse_bool("maybe"), None);
/// ```
pub fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Some(true),
        "0" | "no" | "false" | "off" => Some(false),
        _ => None,
    }
}

/// How a file is opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOptions {
    /// What the file is.
    pub kind: FileKind,
    /// Read-only, read-write, or read-write-create.
    pub access: OpenAccess,
    /// `SQLITE_OPEN_EXCLUSIVE`: fail if the file exists (always paired with
    /// create).
    pub exclusive: bool,
    /// `SQLITE_OPEN_DELETEONCLOSE`: delete the file when it is closed.
    pub delete_on_close: bool,
    /// The raw `SQLITE_OPEN_*` flags, for anything not decoded above.
    pub flags: i32,
    /// The reserved bytes at the end of each database page that the page
    /// layers stacked **above** this VFS claim (see
    /// [`Vfs::page_layers`](crate::Vfs::page_layers)): 0 when SQLite opens
    /// the file; a page layer adds its own slice before it opens the file
    /// on its base. A layer beneath thus knows, per file, which total
    /// reserve means "in this stack's format". Backends ignore it; shims
    /// pass `opts` on unchanged.
    pub page_reserve_above: usize,
}

impl OpenOptions {
    /// Decodes SQLite's open flags; `None` when no file-type bit is set.
    pub fn from_flags(flags: i32) -> Option<OpenOptions> {
        let kind = FileKind::from_flags(flags)?;
        let access = if flags & ffi::SQLITE_OPEN_CREATE != 0 {
            OpenAccess::Create
        } else if flags & ffi::SQLITE_OPEN_READWRITE != 0 {
            OpenAccess::ReadWrite
        } else {
            OpenAccess::ReadOnly
        };
        Some(OpenOptions {
            kind,
            access,
            exclusive: flags & ffi::SQLITE_OPEN_EXCLUSIVE != 0,
            delete_on_close: flags & ffi::SQLITE_OPEN_DELETEONCLOSE != 0,
            flags,
            page_reserve_above: 0,
        })
    }

    /// Builds options for `kind` with `access` (handy in tests and shims).
    pub fn new(kind: FileKind, access: OpenAccess) -> OpenOptions {
        let mut flags = kind.flag();
        flags |= match access {
            OpenAccess::ReadOnly => ffi::SQLITE_OPEN_READONLY,
            OpenAccess::ReadWrite => ffi::SQLITE_OPEN_READWRITE,
            OpenAccess::Create => ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE,
        };
        OpenOptions {
            kind,
            access,
            exclusive: false,
            delete_on_close: false,
            flags,
            page_reserve_above: 0,
        }
    }
}

/// The access an open asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenAccess {
    /// `SQLITE_OPEN_READONLY`.
    ReadOnly,
    /// `SQLITE_OPEN_READWRITE`: the file must exist.
    ReadWrite,
    /// `SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE`.
    Create,
}

impl OpenAccess {
    /// Whether writes are allowed.
    pub fn writable(self) -> bool {
        !matches!(self, OpenAccess::ReadOnly)
    }
}

/// The question `xAccess` asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccessCheck {
    /// `SQLITE_ACCESS_EXISTS`.
    Exists,
    /// `SQLITE_ACCESS_READWRITE`.
    ReadWrite,
    /// `SQLITE_ACCESS_READ` (unused by SQLite itself).
    Read,
}

impl AccessCheck {
    pub(crate) fn from_raw(flags: i32) -> AccessCheck {
        match flags {
            ffi::SQLITE_ACCESS_READWRITE => AccessCheck::ReadWrite,
            ffi::SQLITE_ACCESS_READ => AccessCheck::Read,
            _ => AccessCheck::Exists,
        }
    }

    pub(crate) fn to_raw(self) -> i32 {
        match self {
            AccessCheck::Exists => ffi::SQLITE_ACCESS_EXISTS,
            AccessCheck::ReadWrite => ffi::SQLITE_ACCESS_READWRITE,
            AccessCheck::Read => ffi::SQLITE_ACCESS_READ,
        }
    }
}

/// SQLite's five file-lock levels, in increasing strength.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum LockLevel {
    /// No lock.
    #[default]
    None,
    /// Reading is allowed; any number of connections.
    Shared,
    /// The holder plans to write; at most one, beside readers.
    Reserved,
    /// The holder waits for readers to leave; no new readers.
    Pending,
    /// The holder writes; nobody else holds any lock.
    Exclusive,
}

impl LockLevel {
    /// Decodes `SQLITE_LOCK_*`.
    pub fn from_raw(level: i32) -> LockLevel {
        match level {
            ffi::SQLITE_LOCK_SHARED => LockLevel::Shared,
            ffi::SQLITE_LOCK_RESERVED => LockLevel::Reserved,
            ffi::SQLITE_LOCK_PENDING => LockLevel::Pending,
            ffi::SQLITE_LOCK_EXCLUSIVE => LockLevel::Exclusive,
            _ => LockLevel::None,
        }
    }

    /// The `SQLITE_LOCK_*` value.
    pub fn to_raw(self) -> i32 {
        match self {
            LockLevel::None => ffi::SQLITE_LOCK_NONE,
            LockLevel::Shared => ffi::SQLITE_LOCK_SHARED,
            LockLevel::Reserved => ffi::SQLITE_LOCK_RESERVED,
            LockLevel::Pending => ffi::SQLITE_LOCK_PENDING,
            LockLevel::Exclusive => ffi::SQLITE_LOCK_EXCLUSIVE,
        }
    }
}

/// The flags of `xSync`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncFlags(pub i32);

impl SyncFlags {
    /// `SQLITE_SYNC_FULL` was asked for (otherwise `NORMAL`).
    pub fn full(self) -> bool {
        self.0 & 0x0F == ffi::SQLITE_SYNC_FULL
    }

    /// `SQLITE_SYNC_DATAONLY`: the file's metadata need not be synced.
    pub fn data_only(self) -> bool {
        self.0 & ffi::SQLITE_SYNC_DATAONLY != 0
    }
}

/// `SQLITE_IOCAP_*` bits a file declares through `xDeviceCharacteristics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct DeviceCharacteristics(pub i32);

impl DeviceCharacteristics {
    /// No special property (the safe default).
    pub const NONE: DeviceCharacteristics = DeviceCharacteristics(0);
    /// `SQLITE_IOCAP_SAFE_APPEND`.
    pub const SAFE_APPEND: i32 = ffi::SQLITE_IOCAP_SAFE_APPEND;
    /// `SQLITE_IOCAP_SEQUENTIAL`.
    pub const SEQUENTIAL: i32 = ffi::SQLITE_IOCAP_SEQUENTIAL;
    /// `SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN`.
    pub const UNDELETABLE_WHEN_OPEN: i32 = ffi::SQLITE_IOCAP_UNDELETABLE_WHEN_OPEN;
    /// `SQLITE_IOCAP_POWERSAFE_OVERWRITE`.
    pub const POWERSAFE_OVERWRITE: i32 = ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE;
    /// `SQLITE_IOCAP_IMMUTABLE`: the file never changes (read-only media).
    pub const IMMUTABLE: i32 = ffi::SQLITE_IOCAP_IMMUTABLE;
    /// `SQLITE_IOCAP_BATCH_ATOMIC`.
    pub const BATCH_ATOMIC: i32 = ffi::SQLITE_IOCAP_BATCH_ATOMIC;
    /// `SQLITE_IOCAP_SUBPAGE_READ` (SQLite 3.48). Spelled out: the bindings
    /// of the oldest `libsqlite3-sys` in the supported range predate it, and
    /// the value is fixed by SQLite's ABI. Older SQLite ignores the bit.
    pub const SUBPAGE_READ: i32 = 0x0000_8000;
    /// `SQLITE_IOCAP_ATOMIC` (every write atomic): never claimed by default.
    pub const ATOMIC: i32 = ffi::SQLITE_IOCAP_ATOMIC;
    /// `SQLITE_IOCAP_ATOMIC` and every `SQLITE_IOCAP_ATOMIC512` ..
    /// `SQLITE_IOCAP_ATOMIC64K` (writes of that size are atomic).
    pub const ATOMIC_ANY: i32 = ffi::SQLITE_IOCAP_ATOMIC
        | ffi::SQLITE_IOCAP_ATOMIC512
        | ffi::SQLITE_IOCAP_ATOMIC1K
        | ffi::SQLITE_IOCAP_ATOMIC2K
        | ffi::SQLITE_IOCAP_ATOMIC4K
        | ffi::SQLITE_IOCAP_ATOMIC8K
        | ffi::SQLITE_IOCAP_ATOMIC16K
        | ffi::SQLITE_IOCAP_ATOMIC32K
        | ffi::SQLITE_IOCAP_ATOMIC64K;

    /// Whether all bits of `flag` are set.
    pub fn has(self, flag: i32) -> bool {
        self.0 & flag == flag
    }

    /// This set with `flag` added.
    pub fn with(self, flag: i32) -> Self {
        DeviceCharacteristics(self.0 | flag)
    }

    /// This set with `flag` removed.
    pub fn without(self, flag: i32) -> Self {
        DeviceCharacteristics(self.0 & !flag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The spelled-out constant equals the one of the workspace's bindings.
    #[test]
    fn subpage_read_matches_the_bindings() {
        assert_eq!(
            DeviceCharacteristics::SUBPAGE_READ,
            ffi::SQLITE_IOCAP_SUBPAGE_READ
        );
    }
}
