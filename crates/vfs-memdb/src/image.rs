//! The instance API on database images: load, export, delete.

use std::sync::Arc;
use std::time::{Duration, Instant};

use vfs_core::{Error, FileKind, FileName, LockLevel, Result, ShmLockOp, codes};

use crate::names::{companions, is_shared};
use crate::node::Node;
use crate::store::Store;
use crate::{MemDb, not_found, wal};

/// How long [`MemDb::export`] waits for writers before answering
/// `SQLITE_BUSY`.
const EXPORT_WAIT: Duration = Duration::from_secs(5);

/// The WAL-index lock slot a checkpointer holds (`WAL_CKPT_LOCK`).
const SHM_CHECKPOINT_SLOT: u32 = 1;

impl MemDb {
    /// Stores a database image under the shared name `name` (it must start
    /// with `/`), replacing any database of that name and dropping its
    /// journal and WAL.
    ///
    /// An image in WAL mode (header bytes 18 and 19 equal to 2) is stored in
    /// rollback mode (they become 1), since it comes without its WAL; the
    /// first connection may switch it back with `PRAGMA journal_mode=WAL`.
    /// An empty image is an empty database.
    ///
    /// Errors: `SQLITE_MISUSE` for a private name, `SQLITE_NOTADB` for
    /// bytes that are not an SQLite database, `SQLITE_BUSY` while a
    /// connection has the database open, `SQLITE_FULL` when the image does
    /// not fit in the budget (nothing changes then).
    pub fn load(&self, name: impl AsRef<FileName>, image: &[u8]) -> Result<()> {
        let name = name.as_ref();
        shared_name_only("load", name)?;
        check_image(name, image)?;
        let mut store = Store::from_bytes(image);
        for at in [18u64, 19] {
            if image.get(at as usize) == Some(&2) {
                store.write(&[1], at);
            }
        }
        self.install("load", name, store, image.len() as u64)
    }

    /// Stores `image` under the shared name `name` exactly as given: no
    /// check that it looks like an SQLite database, no header byte
    /// changed. For images whose first page a layer above memdb transforms,
    /// such as a vfs-crypto database (its first 16 bytes are its salt, and
    /// its header bytes are authenticated, so a WAL-mode image must keep
    /// bytes 18 and 19). The image must be complete without a WAL: export
    /// it after a checkpoint. Errors as [`load`](MemDb::load), except that
    /// no content is refused.
    ///
    /// ```
    /// let memdb = vfs_memdb::MemDb::new();
    /// memdb.load_raw("/opaque.db", &[0x5a; 4096])?;
    /// assert_eq!(memdb.export("/opaque.db")?, vec![0x5a; 4096]);
    /// # Ok::<(), vfs_core::Error>(())
    /// ```
    pub fn load_raw(&self, name: impl AsRef<FileName>, image: &[u8]) -> Result<()> {
        let name = name.as_ref();
        shared_name_only("load_raw", name)?;
        self.install(
            "load_raw",
            name,
            Store::from_bytes(image),
            image.len() as u64,
        )
    }

    /// Puts `store` in place of database `name`, dropping its journal and
    /// WAL, unless the database is open or the budget refuses.
    /// `op` names the caller in error messages.
    fn install(&self, op: &str, name: &FileName, store: Store, len: u64) -> Result<()> {
        let mut files = self.inner.files.lock();
        let journal_and_wal = companions(name);
        let old = files.get(name);
        let mut freed = 0;
        if let Some(old) = old {
            if old.kind != FileKind::MainDb {
                return Err(Error::new(
                    codes::SQLITE_MISUSE,
                    format!("{op}({name:?}): that name is not a database"),
                ));
            }
            freed = old.len();
        }
        let busy = old.into_iter().chain(
            journal_and_wal
                .iter()
                .filter_map(|companion| files.get(companion)),
        );
        for node in busy {
            if node.is_open() {
                return Err(Error::busy(format!(
                    "{op}({name:?}): the database is open; close its connections first"
                )));
            }
        }
        let acct = &self.inner.acct;
        acct.reserve(len, freed, &format_args!("{op}({name:?})"))?;
        let node = Node::new(FileKind::MainDb, store, Some(Arc::clone(acct)));
        files.insert(name.to_owned(), node);
        for companion in &journal_and_wal {
            files.remove(companion);
        }
        Ok(())
    }

    /// A consistent image of database `name`: what a connection starting a
    /// read transaction now would see, including transactions committed to
    /// the WAL but not yet checkpointed. The image is byte-for-byte the
    /// database file (a WAL-mode database keeps its WAL-mode header; pass it
    /// to [`load`](MemDb::load) or write it to disk as it is).
    ///
    /// How: it holds a shared lock on the database while copying, so in
    /// rollback mode no commit can change the file meanwhile. In WAL mode it
    /// also holds the WAL-index checkpoint lock, so nothing copies frames
    /// into the database or restarts the WAL; it copies the database, then
    /// the WAL, and applies the WAL's committed transactions (checking salts
    /// and checksums as SQLite's recovery does). WAL writers keep writing
    /// meanwhile; their uncommitted frames are not included.
    ///
    /// While a rollback-mode writer commits (or waits to commit), or a
    /// checkpoint runs, it retries for up to 5 seconds, then answers
    /// `SQLITE_BUSY`: do not call it from a thread whose own connection is
    /// committing on `name`, or with a connection in
    /// `locking_mode=EXCLUSIVE` on it.
    ///
    /// `SQLITE_NOTFOUND` when there is no database of that name;
    /// `SQLITE_MISUSE` when its WAL holds committed frames memdb cannot
    /// verify, as when a layer above memdb transforms the WAL (vfs-crypto
    /// masks its checksums): checkpoint it first (`PRAGMA
    /// wal_checkpoint(TRUNCATE)` through that layer) rather than get an
    /// image without those transactions.
    pub fn export(&self, name: impl AsRef<FileName>) -> Result<Vec<u8>> {
        let name = name.as_ref();
        let db = self.database(name)?;
        let mut lock = db.locks.connect();
        retry_busy(name, || lock.lock(LockLevel::Shared))?;
        // Under SHARED nobody can switch journal modes or delete the WAL;
        // look for it only now.
        let wal = self.inner.files.lock().get(&companions(name)[1]).cloned();
        let wal = wal.filter(|w| w.len() > 0);
        let mut shm = db.shm.as_ref().map(|g| g.connect());
        if let (Some(_), Some(shm)) = (&wal, &mut shm) {
            // While we hold it no checkpoint writes the database file, and
            // the WAL cannot restart (that needs a complete checkpoint
            // first): the database copied below plus the WAL's committed
            // frames copied after it is one consistent state. Writers only
            // append, and committed frames are never rewritten in place.
            retry_busy(name, || {
                shm.lock(SHM_CHECKPOINT_SLOT, 1, ShmLockOp::LockExclusive)
            })?;
        }
        let mut image = db.read().to_vec();
        if let Some(wal) = &wal {
            wal::apply(&mut image, &wal.read()).map_err(|why| {
                Error::new(codes::SQLITE_MISUSE, format!("export({name:?}): {why}"))
            })?;
        }
        drop(shm);
        lock.unlock(LockLevel::None)?;
        Ok(image)
    }

    /// Deletes database `name` with its journal and WAL. Refused with
    /// `SQLITE_BUSY` while a connection has it open; `SQLITE_NOTFOUND` when
    /// there is no such database.
    pub fn delete(&self, name: impl AsRef<FileName>) -> Result<()> {
        let name = name.as_ref();
        let mut files = self.inner.files.lock();
        let Some(node) = files.get(name) else {
            return Err(not_found(name));
        };
        if node.kind != FileKind::MainDb {
            return Err(Error::new(
                codes::SQLITE_MISUSE,
                format!("delete({name:?}): not a database (SQLite manages its own journals)"),
            ));
        }
        let journal_and_wal = companions(name);
        let open = std::iter::once(node)
            .chain(journal_and_wal.iter().filter_map(|c| files.get(c)))
            .any(|n| n.is_open());
        if open {
            return Err(Error::busy(format!(
                "delete({name:?}): the database is open; close its connections first"
            )));
        }
        files.remove(name);
        for companion in &journal_and_wal {
            files.remove(companion);
        }
        Ok(())
    }
}

/// Refuses a private name for `op` (a load): a private database belongs
/// to the one connection that opens it.
fn shared_name_only(op: &str, name: &FileName) -> Result<()> {
    if is_shared(name) {
        return Ok(());
    }
    Err(Error::new(
        codes::SQLITE_MISUSE,
        format!(
            "{op}({name:?}): only a shared name (starting with '/') can be loaded; \
             a private name belongs to the one connection that opens it"
        ),
    ))
}

/// Accepts an empty image or one that starts like an SQLite database.
fn check_image(name: &FileName, image: &[u8]) -> Result<()> {
    if image.is_empty() {
        return Ok(());
    }
    let page_size = match image.get(16..18) {
        Some(&[0, 1]) => 65_536, // the header stores 65536 as 1 (big-endian)
        Some(&[hi, lo]) => u32::from(u16::from_be_bytes([hi, lo])),
        _ => 0,
    };
    if image.len() < 100 || &image[..16] != b"SQLite format 3\0" || !wal::valid_page_size(page_size)
    {
        return Err(Error::new(
            codes::SQLITE_NOTADB,
            format!(
                "load({name:?}): the {} bytes given are not an SQLite database image",
                image.len()
            ),
        ));
    }
    Ok(())
}

/// Runs `f` until it stops answering `SQLITE_BUSY` or [`EXPORT_WAIT`]
/// passes.
fn retry_busy(name: &FileName, mut f: impl FnMut() -> Result<()>) -> Result<()> {
    let deadline = Instant::now() + EXPORT_WAIT;
    let mut pause = Duration::from_micros(20);
    loop {
        match f() {
            Err(e) if e.code() == Some(codes::SQLITE_BUSY) => {
                if Instant::now() >= deadline {
                    return Err(Error::busy(format!(
                        "export({name:?}): a writer or checkpoint kept the database locked \
                         for {} s",
                        EXPORT_WAIT.as_secs()
                    )));
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
            other => return other,
        }
    }
}
