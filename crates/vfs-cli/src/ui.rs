//! Messages and progress: progress bars with rate and ETA on stderr when
//! stdout is a terminal (and not `--quiet`), nothing otherwise.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vfs_core::{FileKind, Op};
use vfs_observe::{Event, LatencyMode, Recorder};

/// How chatty to be.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ui {
    /// No progress, no summary lines (reports and errors still print).
    pub quiet: bool,
    /// Say each step.
    pub verbose: bool,
    /// Draw progress bars.
    pub progress: bool,
}

impl Ui {
    /// From the command-line flags: bars only when stdout is a terminal.
    pub fn new(quiet: bool, verbose: bool) -> Ui {
        Ui {
            quiet,
            verbose: verbose && !quiet,
            progress: !quiet && std::io::stdout().is_terminal(),
        }
    }

    /// Silent (for library use and tests).
    pub fn silent() -> Ui {
        Ui {
            quiet: true,
            verbose: false,
            progress: false,
        }
    }

    /// A summary line on stdout (not under `--quiet`).
    pub fn say(&self, line: impl AsRef<str>) {
        if !self.quiet {
            out(line.as_ref());
        }
    }

    /// A step, under `--verbose` only (stderr, beside the bars).
    pub fn step(&self, line: impl AsRef<str>) {
        if self.verbose {
            eprintln!("  {}", line.as_ref());
        }
    }

    /// A progress bar over `total` bytes (hidden unless bars are on).
    pub fn bar(&self, total: u64, what: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{msg:12} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(what.to_owned());
        bar
    }
}

/// Writes `text` and a newline to stdout. Output cut short by a closed
/// pipe (`sqlite-vfs … | head`) is not an error: the rest is dropped.
pub fn out(text: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// Moves a progress bar with the main-database bytes SQLite reads through
/// a VFS (a `VACUUM INTO` reads each page of its source once).
pub struct ReadProgress(pub ProgressBar);

impl ReadProgress {
    /// As a recorder for [`StackSpec::observed`](crate::stack::StackSpec::observed).
    pub fn recorder(bar: &ProgressBar) -> Arc<dyn Recorder> {
        Arc::new(ReadProgress(bar.clone()))
    }
}

impl Recorder for ReadProgress {
    fn record(&self, e: &Event<'_>) {
        if e.op == Op::Read && e.kind == Some(FileKind::MainDb) && e.is_ok() {
            self.0.inc(e.bytes);
        }
    }

    fn latency(&self) -> LatencyMode {
        LatencyMode::Off
    }
}
