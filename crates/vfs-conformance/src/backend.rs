//! [`Backend`]: how the harness reaches a VFS under test.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rusqlite::{Connection, OpenFlags};
use vfs_core::{Registration, Vfs, register};

/// What a backend supports; cases that need more are skipped (they print
/// why and pass).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Several connections may open one database at once (real locking).
    pub multi_connection: bool,
    /// WAL mode across connections (the files offer shared memory).
    pub wal: bool,
    /// The page sizes a new database may use.
    pub page_sizes: Vec<u32>,
    /// `PRAGMA page_size = N` followed by `VACUUM` changes the page size of
    /// an existing database (page-transforming shims such as cksm swallow
    /// the change on purpose).
    pub page_size_change: bool,
    /// The backend only reads: databases come from [`Backend::installer`]
    /// and every write must fail with `SQLITE_READONLY`.
    pub read_only: bool,
    /// A database outlives its last connection (closing and reopening sees
    /// the same data).
    pub persistent: bool,
    /// The backend models durability (crash-recovery sweeps apply).
    pub durable: bool,
    /// Readers read a snapshot and never block a writer, and WAL mode is
    /// refused (vfs-mvcc's model): a reader's open transaction does not make
    /// a commit wait, it keeps seeing the old data.
    pub snapshot_reads: bool,
    /// Reserved bytes per page the backend's format needs (page-transforming
    /// shims such as vfs-crypto refuse pages without them). A database
    /// copied into the backend then goes through `VACUUM INTO` with
    /// `reserve=N`, a database to ATTACH is created through its own
    /// connection first (the connection hook that applies the reserve does
    /// not run for ATTACH), and a page-for-page backup of a database without
    /// the reserve into it is not attempted.
    pub reserve: Option<u8>,
    /// Any bytes name a file, as on Unix (`%ff` in a URI is the byte 0xff).
    /// A backend whose namespace is text (object keys) answers
    /// `SQLITE_CANTOPEN` for a name that is not UTF-8 instead, and the
    /// names case checks that refusal.
    pub byte_names: bool,
}

/// Every page size SQLite accepts.
pub const ALL_PAGE_SIZES: [u32; 8] = [512, 1024, 2048, 4096, 8192, 16384, 32768, 65536];

impl Capabilities {
    /// Everything: a shared, persistent, writable backend with WAL and every
    /// page size (the native base, a shared in-memory store).
    pub fn full() -> Capabilities {
        Capabilities {
            multi_connection: true,
            wal: true,
            page_sizes: ALL_PAGE_SIZES.to_vec(),
            page_size_change: true,
            read_only: false,
            persistent: true,
            durable: true,
            snapshot_reads: false,
            reserve: None,
            byte_names: true,
        }
    }

    /// A read-only backend.
    pub fn read_only() -> Capabilities {
        Capabilities {
            multi_connection: true,
            wal: false,
            page_sizes: ALL_PAGE_SIZES.to_vec(),
            page_size_change: false,
            read_only: true,
            persistent: true,
            durable: false,
            snapshot_reads: false,
            reserve: None,
            byte_names: true,
        }
    }

    /// Whether `size` is an allowed page size.
    pub fn allows_page_size(&self, size: u32) -> bool {
        self.page_sizes.contains(&size)
    }
}

/// Where a backend's database files live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A fresh temporary directory on disk, removed with the backend.
    TempDir,
    /// A fresh temporary directory in memory-backed storage (`/dev/shm`
    /// where it exists, the system's temporary directory otherwise): real
    /// files without the cost of real `fsync`s, for sweeps that simulate
    /// durability with the fault layer anyway.
    RamTempDir,
    /// Names under this prefix (for in-memory backends; start it with `/`
    /// for backends whose `/`-names are shared and persistent).
    Prefix(String),
}

/// Puts a database image where a read-only backend can serve it: called
/// with the file name the harness will open (as [`Backend::path`] gives it)
/// and the bytes of a database built with SQLite's own VFS.
pub type Installer = Arc<dyn Fn(&str, &[u8]) -> Result<(), String> + Send + Sync>;

impl Location {
    /// A fresh temporary directory for `TempDir` and `RamTempDir`.
    pub(crate) fn temp_dir(&self) -> tempfile::TempDir {
        let shm = std::path::Path::new("/dev/shm");
        let r = match self {
            Location::RamTempDir if shm.is_dir() => tempfile::tempdir_in(shm),
            _ => tempfile::tempdir(),
        };
        r.expect("temporary directory")
    }
}

static NEXT_NAME: AtomicUsize = AtomicUsize::new(1);

/// A process-unique suffix for names (VFS names are process-global).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_NAME.fetch_add(1, Ordering::Relaxed))
}

/// A registered VFS under test, with where its files go and what it
/// supports.
///
/// ```
/// use vfs_conformance::{Backend, Capabilities};
/// let b = Backend::register("doc-native", vfs_core::Native::new().unwrap(), Capabilities::full());
/// let conn = b.open("x.db").unwrap();
/// conn.execute_batch("CREATE TABLE t(x)").unwrap();
/// assert!(b.uri("x.db").contains("?vfs=doc-native-"));
/// ```
pub struct Backend {
    vfs: String,
    label: String,
    caps: Capabilities,
    prefix: String,
    params: String,
    /// Run on every connection [`Backend::open`] makes.
    setup: Option<String>,
    installer: Option<Installer>,
    registration: Option<Registration>,
    keep: Vec<Box<dyn Any + Send + Sync>>,
    dir: Option<tempfile::TempDir>,
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Backend")
            .field("vfs", &self.vfs)
            .field("label", &self.label)
            .field("caps", &self.caps)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Backend {
    /// Registers `vfs` under a fresh unique name derived from `label`, with
    /// files in a temporary directory (see [`Backend::at`]). The VFS is
    /// unregistered when the backend drops (if no file is open by then).
    pub fn register<V: Vfs>(label: &str, vfs: V, caps: Capabilities) -> Backend {
        let name = unique(label);
        let registration =
            register(&name, vfs, false).unwrap_or_else(|e| panic!("registering VFS {name:?}: {e}"));
        let mut b = Backend::existing(&name, caps);
        b.label = label.to_owned();
        b.registration = Some(registration);
        b
    }

    /// A VFS registered by someone else (SQLite's own `unix` or `memdb`, or
    /// yours), with files in a temporary directory.
    pub fn existing(name: &str, caps: Capabilities) -> Backend {
        let dir = tempfile::tempdir().expect("temporary directory");
        let prefix = dir.path().display().to_string();
        Backend {
            vfs: name.to_owned(),
            label: name.to_owned(),
            caps,
            prefix,
            params: String::new(),
            setup: None,
            installer: None,
            registration: None,
            keep: Vec::new(),
            dir: Some(dir),
        }
    }

    /// SQLite's own `unix` VFS on a temporary directory: the reference.
    pub fn sqlite_unix() -> Backend {
        Backend::existing("unix", Capabilities::full())
    }

    /// SQLite's own `memdb` VFS (`/`-names are shared by the process'
    /// connections): the in-memory reference.
    pub fn sqlite_memdb() -> Backend {
        Backend::existing(
            "memdb",
            Capabilities {
                wal: false,
                durable: false,
                ..Capabilities::full()
            },
        )
        .at(Location::Prefix(format!("/{}", unique("memdb"))))
    }

    /// Moves the backend's files to `location`.
    pub fn at(mut self, location: Location) -> Backend {
        match location {
            Location::TempDir | Location::RamTempDir => {
                let dir = location.temp_dir();
                self.prefix = dir.path().display().to_string();
                self.dir = Some(dir);
            }
            Location::Prefix(p) => {
                self.prefix = p.trim_end_matches('/').to_owned();
                self.dir = None;
            }
        }
        self
    }

    /// Adds a URI parameter to every URI (a key, say).
    pub fn uri_param(mut self, key: &str, value: &str) -> Backend {
        self.params.push('&');
        self.params.push_str(key);
        self.params.push('=');
        self.params.push_str(value);
        self
    }

    /// SQL run on every connection the backend opens (a connection setting
    /// the cases should run under, such as `PRAGMA mmap_size = 268435456`).
    pub fn setup_sql(mut self, sql: &str) -> Backend {
        self.setup = Some(sql.to_owned());
        self
    }

    /// Sets the installer read-only backends need.
    pub fn installer(mut self, installer: Installer) -> Backend {
        self.installer = Some(installer);
        self
    }

    /// Keeps `value` alive as long as the backend (a handle, a guard).
    pub fn keep(mut self, value: impl Any + Send + Sync) -> Backend {
        self.keep.push(Box::new(value));
        self
    }

    /// Renames the label (used in messages).
    pub fn label(mut self, label: &str) -> Backend {
        self.label = label.to_owned();
        self
    }

    /// The registered VFS name.
    pub fn vfs_name(&self) -> &str {
        &self.vfs
    }

    /// The label used in messages.
    pub fn name(&self) -> &str {
        &self.label
    }

    /// What the backend supports.
    pub fn caps(&self) -> &Capabilities {
        &self.caps
    }

    /// The directory holding the backend's files on disk, when they live
    /// on disk (not under a [`Location::Prefix`]).
    pub fn disk_dir(&self) -> Option<&std::path::Path> {
        self.dir.as_ref().map(|d| d.path())
    }

    /// The path of `file` as the VFS sees it.
    pub fn path(&self, file: &str) -> String {
        format!("{}/{file}", self.prefix)
    }

    /// The URI that opens `file` on this backend.
    pub fn uri(&self, file: &str) -> String {
        format!("file:{}?vfs={}{}", self.path(file), self.vfs, self.params)
    }

    /// The URI of `file` as a `VACUUM INTO` target: with `reserve=N` when
    /// the backend's format needs reserved bytes.
    pub fn copy_target_uri(&self, file: &str) -> String {
        match self.caps.reserve {
            Some(r) => self.uri_with_reserve(file, r),
            None => self.uri(file),
        }
    }

    fn uri_with_reserve(&self, file: &str, reserve: u8) -> String {
        format!("{}&reserve={reserve}", self.uri(file))
    }

    /// Opens `file` read-write (creating it), busy timeout 0.
    pub fn open(&self, file: &str) -> rusqlite::Result<Connection> {
        let c = Connection::open_with_flags(self.uri(file), OpenFlags::default())?;
        c.busy_timeout(std::time::Duration::ZERO)?;
        self.set_up(&c)?;
        Ok(c)
    }

    fn set_up(&self, c: &Connection) -> rusqlite::Result<()> {
        match &self.setup {
            Some(sql) => c.execute_batch(sql),
            None => Ok(()),
        }
    }

    /// Opens `file` read-only, busy timeout 0.
    pub fn open_read_only(&self, file: &str) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let c = Connection::open_with_flags(self.uri(file), flags)?;
        c.busy_timeout(std::time::Duration::ZERO)?;
        self.set_up(&c)?;
        Ok(c)
    }

    /// Puts a database image at `file`: through the installer if there is
    /// one, otherwise through SQLite (deserialising into a fresh database
    /// with the backup API).
    pub fn install(&self, file: &str, image: &[u8]) -> Result<(), String> {
        if let Some(i) = &self.installer {
            return i(&self.path(file), image);
        }
        let src = crate::check::open_image(image).map_err(|e| e.to_string())?;
        if let Some(r) = self.caps.reserve {
            return src
                .execute("VACUUM INTO ?1", [self.uri_with_reserve(file, r)])
                .map(drop)
                .map_err(|e| e.to_string());
        }
        let mut dst = self.open(file).map_err(|e| e.to_string())?;
        let b = rusqlite::backup::Backup::new(&src, &mut dst).map_err(|e| e.to_string())?;
        b.run_to_completion(1000, std::time::Duration::ZERO, None)
            .map_err(|e| e.to_string())
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(reg) = self.registration.take()
            && let Err((reg, e)) = reg.unregister()
        {
            // Leave it registered rather than panic in a destructor.
            if !std::thread::panicking() {
                eprintln!("vfs-conformance: could not unregister {}: {e}", reg.name());
            }
        }
        self.keep.clear();
        drop(self.dir.take());
    }
}
