//! The backend's own tokio runtime, and the bridge from SQLite's
//! synchronous calls to it.
//!
//! SQLite calls the VFS on the application's thread, which may be a worker
//! of the application's own tokio runtime (sqlx, `spawn_blocking`,
//! `#[tokio::main]`). `Runtime::block_on` there would panic, and waiting for
//! a future polled by the *caller's* runtime could deadlock a
//! current-thread runtime. So every request is spawned onto this private
//! runtime and the calling thread waits on a plain channel: it never enters
//! a runtime and never needs the caller's runtime to make progress.

use std::future::Future;

use vfs_core::{Error, Result};

/// A private multi-threaded runtime, shut down in the background on drop
/// (dropping a runtime the ordinary way inside async code panics).
pub struct Runtime {
    rt: Option<tokio::runtime::Runtime>,
}

impl Runtime {
    /// A runtime with `threads` worker threads.
    pub fn new(threads: usize) -> Result<Runtime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("vfs-object")
            .enable_all()
            .build()
            .map_err(|e| Error::io(format!("vfs-object: cannot start its tokio runtime: {e}")))?;
        Ok(Runtime { rt: Some(rt) })
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.rt
            .as_ref()
            .expect("the runtime lives until drop")
            .handle()
    }

    /// Starts `fut` on the private runtime without waiting for it (a
    /// background task: it stops with the runtime).
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.handle().spawn(fut));
    }

    /// Runs `fut` on the private runtime and waits for its output on the
    /// calling thread. Safe from any thread, inside a runtime or not. A
    /// panic inside `fut` becomes an error.
    pub fn run<F>(&self, fut: F) -> Result<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| {
            Error::io("vfs-object: a store request ended without an answer (it panicked, or the runtime stopped)")
        })
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_from_plain_threads_and_from_inside_other_runtimes() {
        let rt = std::sync::Arc::new(Runtime::new(1).unwrap());
        assert_eq!(rt.run(async { 1 + 1 }).unwrap(), 2);
        // Inside a current-thread runtime's task: no panic, no deadlock.
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let r = rt.clone();
        assert_eq!(
            outer.block_on(async move { r.run(async { 3 }).unwrap() }),
            3
        );
        // A panic in the request is an error, not a panic of the caller.
        let e = rt.run(async { panic!("boom") }).unwrap_err();
        assert!(e.message().contains("without an answer"), "{e}");
        // Dropping inside async code is fine too.
        outer.block_on(async move { drop(rt) });
    }
}
