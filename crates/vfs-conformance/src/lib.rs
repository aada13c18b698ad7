//! # vfs-conformance
//!
//! One conformance suite for every SQLite VFS: the workspace's backends and
//! stacks, and yours. It runs real SQL through `rusqlite` and checks what an
//! application would see.
//!
//! * [`conformance_suite!`] expands to one `#[test]` per case of [`cases`]:
//!   journal modes, page sizes, auto-vacuum, `VACUUM` / `VACUUM INTO`
//!   across backends, `ATTACH` with cross-database transactions, savepoints,
//!   large and incremental blobs, big sorts with `temp_store=FILE`, the
//!   backup API, `SQLITE_BUSY` handling, WAL snapshots, differential
//!   testing against SQLite's own `unix` and `memdb` ([`differential`]),
//!   concurrency stress with invariants ([`stress`]), read-only use. Every
//!   case ends with `PRAGMA integrity_check` and an exact row check.
//! * [`crash_suite!`] expands to power-cut and I/O-error sweeps over a stack
//!   with a [`vfs_fault::Fault`] layer at its bottom ([`crash`]).
//!
//! Your backend is described by a [`Backend`]: how to register a fresh
//! instance, where its files go ([`Location`]) and what it supports
//! ([`Capabilities`]); cases it cannot run are skipped with a message.
//!
//! ```ignore
//! // tests/conformance.rs of your crate
//! use vfs_conformance::{Backend, Capabilities, Location, conformance_suite, crash_suite};
//!
//! conformance_suite!(mine, |case: &str| {
//!     Backend::register(&format!("mine-{case}"), MyVfs::new(), Capabilities::full())
//!         .at(Location::Prefix("/".into())) // for an in-memory backend
//! });
//!
//! crash_suite!(mine_crash, "mine", || {
//!     let fault = vfs_fault::Fault::new(MyVfs::new());
//!     let ctl = fault.controller();
//!     (fault, ctl)
//! }, Location::Prefix("/crash".into()));
//! ```
//!
//! Each case is also a plain function taking a factory
//! (`&dyn Fn(&str) -> Backend`), so a hand-written test can call one:
//!
//! ```
//! use vfs_conformance::{Backend, Capabilities, cases};
//! cases::savepoints_and_statement_rollback(&|case: &str| {
//!     Backend::register(&format!("doc-{case}"), vfs_core::Native::new().unwrap(), Capabilities::full())
//! });
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backend;
pub mod cases;
pub mod check;
pub mod crash;
pub mod data;
pub mod differential;
pub mod stress;

pub use backend::{ALL_PAGE_SIZES, Backend, Capabilities, Installer, Location, unique};

/// Re-exported so the macros work in crates that do not name these
/// dependencies.
pub use vfs_core;
/// Re-exported for [`crash_suite!`].
pub use vfs_fault;

/// Expands to a module `$module` with one `#[test]` per conformance case,
/// each calling the case with `$factory`, an expression of type
/// `impl Fn(&str) -> Backend` (the argument names the case, for unique VFS
/// names).
///
/// ```ignore
/// vfs_conformance::conformance_suite!(native, |case: &str| {
///     vfs_conformance::Backend::register(
///         &format!("native-{case}"),
///         vfs_core::Native::new().unwrap(),
///         vfs_conformance::Capabilities::full(),
///     )
/// });
/// ```
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $factory:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            fn factory(case: &str) -> $crate::Backend {
                let f = $factory;
                f(case)
            }

            $crate::__conformance_cases!(
                journal_delete,
                journal_truncate,
                journal_persist,
                journal_memory,
                journal_wal,
                journal_off,
                page_size_512,
                page_size_4096,
                page_size_65536,
                auto_vacuum_none,
                auto_vacuum_full,
                auto_vacuum_incremental,
                vacuum_in_place,
                vacuum_into_other_backends,
                vacuum_into_from_other_backends,
                attach_cross_backend_commit,
                attach_cross_backend_rollback,
                savepoints_and_statement_rollback,
                large_blobs,
                incremental_blob_io,
                large_sort_temp_store_file,
                backup_between_backends,
                busy_timeout_zero,
                busy_timeout_waits,
                busy_reader_blocks_commit,
                wal_snapshots_and_many_frames,
                differential_random_workload,
                concurrency_stress_rollback,
                concurrency_stress_wal,
                read_only_queries,
                reopen_persists,
                file_names_beyond_utf8
            );

            #[test]
            #[ignore = "long run: cargo test -- --ignored"]
            fn long_differential_random_workload() {
                $crate::cases::long_differential_random_workload(&factory);
            }

            #[test]
            #[ignore = "long run: cargo test -- --ignored"]
            fn long_concurrency_stress() {
                $crate::cases::long_concurrency_stress(&factory);
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::cases::$case(&factory);
            }
        )*
    };
}

/// Expands to a module `$module` of crash-recovery and I/O-error tests for
/// a stack with a fault layer at its bottom.
///
/// * `$label`: a short name for messages and VFS names;
/// * `$make`: an expression of type `impl Fn() -> (S, FaultController)`
///   building the stack (`S: Vfs`) whose bottom is a
///   [`vfs_fault::Fault`], and that layer's controller;
/// * `$location`: a [`Location`] for the database files.
///
/// The CI tests sweep a power cut over every durability operation of a
/// 10-transaction workload in `DELETE` (with `synchronous=EXTRA`),
/// `TRUNCATE`, `PERSIST` and `WAL` modes (`FULL`), and fail data
/// operations, lock operations, and open/delete/access operations one at a
/// time. Each test prints its figures (see them with `--nocapture`). The
/// `#[ignore]`d `long_power_cuts` test sweeps at least `VFS_CRASH_POINTS`
/// points (default 100,000) over many workloads.
#[macro_export]
macro_rules! crash_suite {
    ($module:ident, $label:expr, $make:expr, $location:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            use $crate::crash::JournalMode;

            fn target() -> $crate::crash::Target<impl $crate::vfs_core::Vfs> {
                let make = $make;
                let (stack, ctl) = make();
                $crate::crash::Target::new($label, stack, ctl, &$location)
            }

            #[test]
            fn power_cut_delete_extra() {
                $crate::crash::ci_power_cuts(&target(), JournalMode::Delete);
            }

            #[test]
            fn power_cut_truncate_full() {
                $crate::crash::ci_power_cuts(&target(), JournalMode::Truncate);
            }

            #[test]
            fn power_cut_persist_full() {
                $crate::crash::ci_power_cuts(&target(), JournalMode::Persist);
            }

            #[test]
            fn power_cut_wal_full() {
                $crate::crash::ci_power_cuts(&target(), JournalMode::Wal);
            }

            #[test]
            fn power_cut_two_databases_delete_extra() {
                $crate::crash::ci_two_databases(&target(), JournalMode::Delete);
            }

            #[test]
            fn power_cut_two_databases_persist_full() {
                $crate::crash::ci_two_databases(&target(), JournalMode::Persist);
            }

            #[test]
            fn io_errors_rollback_journal() {
                $crate::crash::ci_io_errors(&target(), JournalMode::Truncate);
            }

            #[test]
            fn io_errors_wal() {
                $crate::crash::ci_io_errors(&target(), JournalMode::Wal);
            }

            #[test]
            fn disk_full_and_lock_errors() {
                $crate::crash::ci_full_and_lock_errors(&target());
            }

            #[test]
            #[ignore = "long run: cargo test -- --ignored long_power_cuts"]
            fn long_power_cuts() {
                $crate::crash::long_power_cuts(&target(), $crate::crash::long_points());
            }
        }
    };
}
