//! One database: its published versions and the writer slot.

use std::sync::Arc;

use parking_lot::Mutex;
use vfs_core::{Error, FileName, FileNameBuf, Result, codes};

use crate::pages::Pages;

/// One published state of a database.
#[derive(Debug)]
pub(crate) struct Version {
    /// How many versions were published before this one (0 for the first).
    pub(crate) seq: u64,
    pub(crate) pages: Pages,
}

/// A database shared by the connections that opened it.
#[derive(Debug)]
pub(crate) struct Db {
    pub(crate) name: FileNameBuf,
    state: Mutex<DbState>,
}

#[derive(Debug)]
struct DbState {
    committed: Arc<Version>,
    /// The connection holding RESERVED or stronger, if any.
    writer: Option<u64>,
}

/// Why a connection could not become the writer.
pub(crate) enum WriteRefused {
    /// Another connection is writing.
    Busy,
    /// The connection's snapshot is older than the newest version.
    Stale,
}

impl Db {
    pub(crate) fn new(name: FileNameBuf, pages: Pages) -> Arc<Db> {
        Arc::new(Db {
            name,
            state: Mutex::new(DbState {
                committed: Arc::new(Version { seq: 0, pages }),
                writer: None,
            }),
        })
    }

    /// The newest published version (an `Arc` clone: O(1)).
    pub(crate) fn committed(&self) -> Arc<Version> {
        Arc::clone(&self.state.lock().committed)
    }

    /// Makes connection `id`, whose snapshot is version `seq`, the writer.
    pub(crate) fn begin_write(&self, id: u64, seq: u64) -> std::result::Result<(), WriteRefused> {
        let mut st = self.state.lock();
        match st.writer {
            Some(w) if w == id => return Ok(()),
            Some(_) => return Err(WriteRefused::Busy),
            None => {}
        }
        if st.committed.seq != seq {
            return Err(WriteRefused::Stale);
        }
        st.writer = Some(id);
        Ok(())
    }

    /// Ends connection `id`'s write, publishing `pages` as the next version
    /// when given. Returns the version the connection now sees.
    pub(crate) fn end_write(&self, id: u64, publish: Option<Pages>) -> Option<Arc<Version>> {
        let mut st = self.state.lock();
        if st.writer != Some(id) {
            return None;
        }
        st.writer = None;
        let pages = publish?;
        let version = Arc::new(Version {
            seq: st.committed.seq + 1,
            pages,
        });
        st.committed = Arc::clone(&version);
        Some(version)
    }

    /// Whether any connection holds RESERVED or stronger.
    pub(crate) fn has_writer(&self) -> bool {
        self.state.lock().writer.is_some()
    }

    /// Replaces the published contents with `pages` (restore / load), unless
    /// a connection is writing. When both the old and the new image are
    /// SQLite databases, the new image's file change counter is set above
    /// the old one so that every connection's page cache notices the change.
    pub(crate) fn replace(&self, mut pages: Pages) -> Result<u64> {
        let mut st = self.state.lock();
        if st.writer.is_some() {
            return Err(Error::busy(format!(
                "database {:?} has a write transaction in progress; retry after it ends",
                self.name
            )));
        }
        if let (Some(old), Some(new)) =
            (st.committed.pages.change_counter(), pages.change_counter())
        {
            pages.stamp_change_counter(old.max(new).wrapping_add(1))?;
        }
        let seq = st.committed.seq + 1;
        st.committed = Arc::new(Version { seq, pages });
        Ok(seq)
    }
}

/// The `SQLITE_BUSY*` error for a refused write.
pub(crate) fn refused_error(db: &FileName, why: WriteRefused) -> Error {
    match why {
        WriteRefused::Busy => Error::busy(format!(
            "database {db:?}: another connection is writing (one writer at a time)"
        )),
        WriteRefused::Stale => Error::new(
            codes::SQLITE_BUSY_SNAPSHOT,
            format!(
                "database {db:?}: this connection's snapshot is stale (another connection \
                 committed since its read transaction began); end the transaction and retry"
            ),
        ),
    }
}
