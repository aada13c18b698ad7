//! No Rust heap allocation on the read/write path: a counting global
//! allocator around a loop of xRead/xWrite calls through the trampolines.

use std::ffi::CString;

use libsqlite3_sys as ffi;
use vfs_core::alloc_count::{CountingAllocator, count_allocations};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[path = "common/fixed.rs"]
mod fixed;

use fixed::Fixed;

#[test]
fn read_write_path_does_not_allocate() {
    let reg = vfs_core::register("no-alloc-fixed", Fixed, false).unwrap();
    let name = CString::new("no-alloc-fixed").unwrap();
    // SQLite's name layout: name, NUL, empty parameter list (NUL NUL).
    let path: &[u8] = b"fixed.db\0\0\0";
    // SAFETY: the VFS is registered; we open one file in a block of szOsFile
    // bytes, call xRead/xWrite with valid buffers, and close it once.
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
        let mut page = [0u8; 4096];
        let ((), allocations) = count_allocations(|| {
            for i in 0..10_000i64 {
                let off = (i % 16) * 4096;
                page[0] = i as u8;
                assert_eq!(
                    methods.xWrite.unwrap()(file, page.as_ptr().cast(), 4096, off),
                    0
                );
                assert_eq!(
                    methods.xRead.unwrap()(file, page.as_mut_ptr().cast(), 4096, off),
                    0
                );
                assert_eq!(page[0], i as u8);
            }
        });
        assert_eq!(
            allocations, 0,
            "20,000 reads and writes through the trampolines allocated"
        );
        assert_eq!(methods.xClose.unwrap()(file), 0);
    }
    // The counter does see allocations (so the zero above means something).
    let (v, n) = count_allocations(|| vec![1u8; 10]);
    assert_eq!((v.len(), n), (10, 1));
    reg.unregister().unwrap();
}
