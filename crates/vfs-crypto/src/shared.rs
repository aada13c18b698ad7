//! What the files of one database share: per SQLite connection, its main
//! file, journal and WAL share what the database's page 1 authenticated as;
//! across the layer, passphrase derivations are shared while in use.

use std::sync::{Arc, Weak};

use parking_lot::{Mutex, MutexGuard};
use subtle::ConstantTimeEq;
use vfs_core::LockLevel;
use zeroize::Zeroizing;

use crate::derive::DbKeys;
use crate::key::{KdfParams, KeySource};
use crate::session::Session;

/// The state shared by the files one SQLite connection opened for one
/// database (its main file, its rollback journal, its WAL): they are
/// matched by the connection's database (see
/// `vfs_core::OpenName::database_id`), not by path, so two files that had
/// the same path at different times never share an identity.
#[derive(Default)]
pub(crate) struct DbShared(Mutex<Shared>);

impl DbShared {
    pub(crate) fn lock(&self) -> MutexGuard<'_, Shared> {
        self.0.lock()
    }
}

/// See [`DbShared`].
#[derive(Default)]
pub(crate) struct Shared {
    /// The keys that authenticated the database's stored page 1 (or that
    /// created the database), with its identity. Only a page 1 that
    /// authenticates sets them: one that does not changes nothing for the
    /// other files.
    pub(crate) trusted: Option<Arc<DbKeys>>,
    /// The passphrase derivation `trusted` came from, kept alive (and so
    /// in the layer's cache) while the database is open.
    pub(crate) kdf: Option<Arc<KdfEntry>>,
    /// The lock the main file holds.
    pub(crate) lock: LockLevel,
    /// The stored page 1 as last seen while the main file held a lock:
    /// current until the lock falls to NONE (no other connection can write
    /// the database while this one holds SHARED or more).
    pub(crate) page1: Page1State,
    /// The id of the rollback journal this connection is writing (version
    /// 2): every page 1 it writes meanwhile carries it.
    pub(crate) journal: Option<u32>,
    /// While this connection plays back a journal it did not write: the id
    /// of the page 1 that journal's transaction began from, which the page
    /// 1 it restores carries again.
    pub(crate) restoring: Option<u32>,
    /// A journal this connection did not write was read (SQLite checking
    /// for a hot journal): the next EXCLUSIVE lock, taken to play it back,
    /// checks page 1 first, so the journal is judged against the stored
    /// page 1 as it is under that lock.
    pub(crate) foreign_journal: bool,
    /// The key source of the connection's main file (files matched by
    /// connection only): its journal and WAL, whose names carry the same
    /// URI parameters, take it instead of parsing them again at every
    /// open (a rollback journal is opened per write transaction).
    pub(crate) source: Option<Arc<KeySource>>,
    /// The encryption session of the last rollback journal closed, with
    /// the keys it was derived from: the next journal under the same keys
    /// encrypts in it instead of deriving a key and setting up a cipher
    /// context per transaction. Dropped (and so cleansed, see `gcm.rs`)
    /// when replaced, when the trusted keys change and when the last file
    /// of the database closes.
    spare: Option<(Arc<DbKeys>, Session)>,
}

impl Shared {
    /// Records what the stored page 1 was found to be; kept only when the
    /// main file holds a lock (otherwise another connection may change it
    /// at any time).
    pub(crate) fn saw_page1(&mut self, state: Page1State) {
        self.page1 = if self.lock == LockLevel::None {
            Page1State::Unknown
        } else {
            state
        };
    }

    /// Keeps a closing journal's session for the next journal.
    pub(crate) fn keep_session(&mut self, keys: &Arc<DbKeys>, session: Session) {
        if self.trusted.as_ref().is_some_and(|t| Arc::ptr_eq(t, keys)) {
            self.spare = Some((keys.clone(), session));
        }
    }

    /// The kept session, if it was derived from `keys`.
    pub(crate) fn take_session(&mut self, keys: &Arc<DbKeys>) -> Option<Session> {
        match self.spare.take() {
            Some((k, s)) if Arc::ptr_eq(&k, keys) => Some(s),
            _ => None,
        }
    }

    /// The keys the database's files use from now on.
    pub(crate) fn set_trusted(&mut self, keys: Arc<DbKeys>) {
        if self
            .spare
            .as_ref()
            .is_some_and(|(k, _)| !Arc::ptr_eq(k, &keys))
        {
            self.spare = None;
        }
        self.trusted = Some(keys);
    }

    /// The main file's lock is now `level`.
    pub(crate) fn locked(&mut self, level: LockLevel) {
        self.lock = level;
        if level == LockLevel::None {
            self.page1 = Page1State::Unknown;
        }
    }
}

/// The stored page 1, as far as the current lock tells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Page1State {
    /// Not seen under the current lock.
    #[default]
    Unknown,
    /// Authenticated under the trusted keys; its id (version 2, else 0).
    Authenticated(u32),
    /// Did not authenticate.
    Failed,
}

/// One Argon2id result.
pub(crate) struct KdfEntry {
    pub(crate) passphrase: Zeroizing<Vec<u8>>,
    pub(crate) salt: [u8; 16],
    pub(crate) params: KdfParams,
    pub(crate) master: Zeroizing<[u8; 32]>,
}

/// Argon2id results of the layer, kept while a database uses them (so a
/// second connection with the same passphrase does not pay for the
/// derivation again) and only once they proved right (their key check
/// value matched): a wrong passphrase is never kept.
#[derive(Default)]
pub(crate) struct KdfCache(Mutex<Vec<Weak<KdfEntry>>>);

impl KdfCache {
    /// A live result for these inputs. The passphrase is compared in
    /// constant time: the cache holds only proven passphrases, and how long
    /// a lookup takes must not tell a prober how much of one it guessed.
    pub(crate) fn find(
        &self,
        passphrase: &[u8],
        salt: &[u8; 16],
        params: KdfParams,
    ) -> Option<Arc<KdfEntry>> {
        self.0.lock().iter().filter_map(Weak::upgrade).find(|e| {
            e.salt == *salt
                && e.params == params
                && bool::from(e.passphrase.as_slice().ct_eq(passphrase))
        })
    }

    /// Keeps `entry` findable while something holds it.
    pub(crate) fn keep(&self, entry: &Arc<KdfEntry>) {
        let mut v = self.0.lock();
        v.retain(|w| w.strong_count() > 0);
        if !v
            .iter()
            .any(|w| std::ptr::eq(w.as_ptr(), Arc::as_ptr(entry)))
        {
            v.push(Arc::downgrade(entry));
        }
    }

    /// Results held.
    pub(crate) fn live(&self) -> usize {
        self.0
            .lock()
            .iter()
            .filter(|w| w.strong_count() > 0)
            .count()
    }
}
