//! Arbitrary sequences of VFS operations (open, read, write, truncate, sync,
//! lock, delete, power cuts, injected faults) through vfs-fault's layer,
//! checked against its independent model: any divergence is a bug.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(divergence) = vfs_fault::fuzz::run_ops(data) {
        panic!("the fault layer diverged from its model: {divergence:?}");
    }
});
