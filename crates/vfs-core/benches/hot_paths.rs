//! Criterion micro-benchmarks of vfs-core's hot paths: a page read and
//! write through the C trampolines, the lock manager, the WAL lock table.
//! `cargo bench -p vfs-core`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use libsqlite3_sys as ffi;
use vfs_core::{LockLevel, LockManager, ShmGroup, ShmLockOp};

#[path = "../tests/common/fixed.rs"]
mod fixed;

use fixed::Fixed;

fn trampolines(c: &mut Criterion) {
    let _reg = vfs_core::register("bench-fixed", Fixed, false).unwrap();
    let name = c"bench-fixed";
    // SQLite's name layout: name, NUL, empty parameter list (NUL NUL).
    let path: &[u8] = b"fixed.db\0\0\0";
    // SAFETY: the VFS is registered; one file is opened in a block of
    // szOsFile bytes, read and written with valid buffers, closed once.
    unsafe {
        let vfs = ffi::sqlite3_vfs_find(name.as_ptr());
        let mut mem = vec![0u64; ((*vfs).szOsFile as usize).div_ceil(8)];
        let file = mem.as_mut_ptr().cast::<ffi::sqlite3_file>();
        let flags = ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE;
        let mut out = 0;
        assert_eq!(
            (*vfs).xOpen.unwrap()(vfs, path.as_ptr().cast(), file, flags, &mut out),
            0
        );
        let methods = &*(*file).pMethods;
        let mut page = [7u8; 4096];
        c.bench_function("xRead 4 KiB through the trampoline", |b| {
            b.iter(|| methods.xRead.unwrap()(file, page.as_mut_ptr().cast(), 4096, black_box(8192)))
        });
        c.bench_function("xWrite 4 KiB through the trampoline", |b| {
            b.iter(|| methods.xWrite.unwrap()(file, page.as_ptr().cast(), 4096, black_box(8192)))
        });
        methods.xClose.unwrap()(file);
    }
}

fn locks(c: &mut Criterion) {
    let m = LockManager::new();
    let mut a = m.connect();
    let _reader = {
        let mut r = m.connect();
        r.lock(LockLevel::Shared).unwrap();
        r
    };
    c.bench_function("lock manager: SHARED then NONE", |b| {
        b.iter(|| {
            a.lock(LockLevel::Shared).unwrap();
            a.unlock(LockLevel::None).unwrap();
        })
    });
    let g = ShmGroup::new();
    let mut conn = g.connect();
    c.bench_function("WAL lock table: shared read slot lock + unlock", |b| {
        b.iter(|| {
            conn.lock(black_box(3), 1, ShmLockOp::LockShared).unwrap();
            conn.lock(3, 1, ShmLockOp::UnlockShared).unwrap();
        })
    });
}

criterion_group!(benches, trampolines, locks);
criterion_main!(benches);
