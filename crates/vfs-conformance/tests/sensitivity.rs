//! The harness can fail: settings and backends known to be wrong are
//! caught by the sweeps and the differential test.

use vfs_conformance::crash::{
    CrashPlan, IoErrorPlan, JournalMode, Target, io_error_sweep, power_cut_sweep,
};
use vfs_conformance::vfs_fault::{Fault, MemDisk, OpSet, Rule, TearOutcome};
use vfs_conformance::{Backend, Capabilities, Location, differential};
use vfs_core::{FileKind, Op};

fn memdisk_target(label: &str) -> Target<Fault<MemDisk>> {
    let fault = Fault::new(MemDisk::new());
    let ctl = fault.controller();
    Target::new(label, fault, ctl, &Location::Prefix("/sens".into()))
}

/// DELETE mode with `synchronous=FULL` unlinks the journal without a
/// directory sync: the sweep must find acknowledged commits rolled back.
#[test]
fn delete_mode_with_synchronous_full_loses_commits_and_the_sweep_sees_it() {
    let t = memdisk_target("delete-full");
    let plan = CrashPlan {
        synchronous: "FULL",
        transactions: 5,
        ..CrashPlan::ci(JournalMode::Delete)
    };
    let r = power_cut_sweep(&t, &plan);
    println!("{r}");
    assert!(r.lost_commits > 0, "{r}");
    assert_eq!(r.integrity_failures, 0, "{r}");
}

/// Without syncs nothing is durable: commits are lost and, with a journal
/// that never reaches the medium, databases end up corrupt or torn.
#[test]
fn synchronous_off_is_caught() {
    let t = memdisk_target("sync-off");
    let plan = CrashPlan {
        synchronous: "OFF",
        transactions: 5,
        ..CrashPlan::ci(JournalMode::Truncate)
    };
    let r = power_cut_sweep(&t, &plan);
    println!("{r}");
    assert!(
        r.lost_commits + r.bad_states + r.integrity_failures > 0,
        "{r}"
    );
}

/// A `SQLITE_BUSY` on the lock SQLite takes to spill its cache is absorbed
/// by SQLite (it does not spill); a plan that demands every error surface
/// reports it as swallowed.
#[test]
fn swallowed_errors_are_reported() {
    let t = memdisk_target("busy-spill");
    let base = IoErrorPlan::ci(JournalMode::Delete);
    let plan = IoErrorPlan {
        ops: OpSet::from(Op::Lock),
        failure: vfs_conformance::vfs_fault::Failure::busy(),
        crash: CrashPlan {
            stride: 1,
            ..base.crash.clone()
        },
        ..base
    };
    let r = io_error_sweep(&t, &plan);
    println!("{r}");
    assert!(!r.swallowed.is_empty(), "{r}");
    assert_eq!(r.integrity_failures + r.wrong_states + r.unusable, 0, "{r}");
}

/// A backend that silently drops part of some database writes gives
/// different answers from SQLite's own VFSes.
#[test]
fn differential_testing_catches_a_lying_backend() {
    let fault = Fault::new(MemDisk::new());
    fault.controller().add(
        Rule::tear(100, TearOutcome::ReportSuccess)
            .file_kind(FileKind::MainDb)
            .nth(40)
            .persistent(),
    );
    let b = Backend::register("lying", fault, Capabilities::full())
        .at(Location::Prefix("/lying".into()));
    let plan = differential::Plan {
        seeds: vec![5],
        statements: 300,
        journal_modes: vec!["DELETE"],
    };
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        differential::run(&b, &plan)
    }));
    assert!(
        r.is_err(),
        "a backend losing writes passed the differential test"
    );
}
