//! Instruction counts of the hot paths, for `cargo xtask bench-instructions`
//! (which runs this mode under valgrind's callgrind).
//!
//! `vfs-bench --instructions TARGET` runs the single-connection steps on
//! `TARGET` at [`SCALE`], each inside [`instr_measured`]. Callgrind,
//! started with collection off, `--toggle-collect=*instr_measured*` and
//! `--dump-after=*instr_measured*`, then writes one profile per step
//! holding exactly the instructions executed inside it (SQLite's, the
//! VFS's, everything on this thread), whatever else the machine is doing.
//! The mode prints the target's family, then the steps and their
//! operation counts, one per line in order (`step NAME OPS`), so the xtask
//! can divide each dump by its step's operations.
//! Natively (without valgrind) it only checks that the steps run.

use crate::rounds::Res;
use crate::targets;
use crate::workloads::{self, STEPS, Scale};

/// Small enough for valgrind (about 50 times slower than native), large
/// enough that the database (about 2.5 MB) outgrows SQLite's 2 MB cache.
pub const SCALE: Scale = Scale {
    rows: 20_000,
    small_txns: 500,
    disk_small_txns: 100,
    lookups: 5_000,
    ranges: 200,
    updates: 1_000,
    reader_time: Scale::QUICK.reader_time,
};

/// The measured section: callgrind collects inside this function only.
#[inline(never)]
pub fn instr_measured<T>(f: impl FnOnce() -> T) -> T {
    std::hint::black_box(f())
}

/// Runs every step on `target` and prints its family and one line per
/// step.
pub fn run(target: &str) -> Res<()> {
    workloads::CPU_CLOCK.store(false, std::sync::atomic::Ordering::Relaxed);
    let tmp = tempfile::tempdir()?;
    let all = targets::all(tmp.path())?;
    let t = all
        .iter()
        .find(|t| t.name == target && !t.read_only)
        .ok_or_else(|| {
            let names: Vec<&str> = all
                .iter()
                .filter(|t| !t.read_only)
                .map(|t| t.name.as_str())
                .collect();
            format!("no target {target:?}; one of {}", names.join(", "))
        })?;
    println!(
        "family {}",
        match t.family {
            targets::Family::Memory => "memory",
            targets::Family::Disk => "disk",
        }
    );
    let db = t.fresh_db("instr");
    let mut conn = t.connect(&t.uri(&db))?;
    workloads::schema(&conn)?;
    for step in &STEPS {
        let m = instr_measured(|| (step.run)(&mut conn, &SCALE))?;
        println!("step {} {}", step.name, m.ops);
    }
    Ok(())
}
