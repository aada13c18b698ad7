//! Running programs under a time limit, and a small pool of workers.

use std::fs;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How a program ended.
pub struct Ran {
    /// The exit code; `None` when killed by a signal (or by the timeout).
    pub code: Option<i32>,
    pub timed_out: bool,
    pub secs: f64,
    /// Everything it printed (stdout and stderr interleaved).
    pub output: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }

    /// `exit N`, `killed after the N s limit`, or `killed by a signal`.
    pub fn describe(&self) -> String {
        match (self.timed_out, self.code) {
            (true, _) => "killed at the time limit".to_owned(),
            (false, Some(c)) => format!("exit {c}"),
            (false, None) => "killed by a signal".to_owned(),
        }
    }
}

/// Runs `cmd` with its output (stdout and stderr) in `log`, in a process
/// group of its own that is killed whole (children included: mptest's
/// clients, testfixture's helper processes) when `limit` passes.
pub fn run_limited(mut cmd: Command, log: &Path, limit: Duration) -> Ran {
    let start = Instant::now();
    let spawned = fs::File::create(log).and_then(|f| {
        let err = f.try_clone()?;
        cmd.stdout(f)
            .stderr(err)
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
    });
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Ran {
                code: None,
                timed_out: false,
                secs: 0.0,
                output: format!("could not start {:?}: {e}", cmd.get_program()),
            };
        }
    };
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if start.elapsed() >= limit => {
                timed_out = true;
                kill_group(child.id());
                break child.wait().ok();
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break None,
        }
    };
    let secs = start.elapsed().as_secs_f64();
    // A background child of the program (an mptest client that outlived its
    // parent) must not survive the run either.
    kill_group(child.id());
    let output = fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Ran {
        code: status.and_then(|s| s.code()),
        timed_out,
        secs,
        output,
    }
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Runs `f` on every item with up to `jobs` threads; results in item order.
pub fn parallel<T: Sync, R: Send>(jobs: usize, items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, items.len().max(1)) {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(item) = items.get(i) else {
                        break;
                    };
                    let r = f(item);
                    results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every item ran"))
        .collect()
}
