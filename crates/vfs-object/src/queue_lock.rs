//! One process per group commit queue directory (`docs/object.md`, "Group
//! commit"): an exclusive lock on `<dir>/queue.lock`, held for as long as
//! the queue is attached. Two uploaders of one queue would publish its
//! transactions twice or delete each other's files, so a second opener is
//! refused instead.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

/// The lock file's name inside a queue directory (the only file there that
/// is not a queued transaction).
pub const LOCK_FILE: &str = "queue.lock";

/// An exclusive lock on a queue directory; released when dropped.
pub struct QueueLock {
    _file: File,
}

/// Creates `dir` if missing and locks it for this process. The lock is an
/// advisory `flock`-style lock on the open file: it ends with the process,
/// however it ends, so a crash never leaves a directory locked. Another
/// holder — another process, or another `ObjectVfs` of this one — is an
/// error naming the directory and the lock file.
pub fn lock(dir: &Path) -> Result<QueueLock, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the queue directory {}: {e}", dir.display()))?;
    let path: PathBuf = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open the queue lock {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(QueueLock { _file: file }),
        Err(TryLockError::WouldBlock) => Err(format!(
            "the queue directory {} is in use: another process (or another ObjectVfs of this \
             one) holds its lock {}; one process per queue directory",
            dir.display(),
            path.display()
        )),
        Err(TryLockError::Error(e)) => Err(format!(
            "cannot lock the queue directory {} (lock file {}): {e}",
            dir.display(),
            path.display()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("q");
        let first = lock(&q).unwrap();
        let e = lock(&q).err().unwrap();
        assert!(e.contains(LOCK_FILE) && e.contains("in use"), "{e}");
        drop(first);
        lock(&q).unwrap();
    }
}
