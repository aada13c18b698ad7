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

/// Files of 16 pages, each lendable, as a backend that keeps pages in
/// `Arc`s does.
struct Lending;
struct LendingFile(Vec<std::sync::Arc<[u8]>>);

impl vfs_core::Vfs for Lending {
    type File = LendingFile;
    fn open(
        &self,
        _: &vfs_core::OpenName<'_>,
        _: vfs_core::OpenOptions,
    ) -> vfs_core::Result<LendingFile> {
        let page = || vec![0u8; 4096 + vfs_core::Mapping::OVERREAD].into();
        Ok(LendingFile((0..16).map(|_| page()).collect()))
    }
    fn delete(&self, _: &vfs_core::FileName, _: bool) -> vfs_core::Result<()> {
        Ok(())
    }
    fn access(&self, _: &vfs_core::FileName, _: vfs_core::AccessCheck) -> vfs_core::Result<bool> {
        Ok(false)
    }
}

impl vfs_core::File for LendingFile {
    vfs_core::no_lock!();
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> vfs_core::Result<usize> {
        buf.copy_from_slice(&self.0[offset as usize / 4096][..buf.len()]);
        Ok(buf.len())
    }
    fn can_fetch(&self) -> bool {
        true
    }
    fn fetch(&mut self, offset: u64, len: usize) -> vfs_core::Result<Option<vfs_core::Mapping>> {
        Ok(vfs_core::Mapping::lend(
            &self.0[offset as usize / 4096],
            0,
            len,
        ))
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> vfs_core::Result<()> {
        std::sync::Arc::make_mut(&mut self.0[offset as usize / 4096])[..buf.len()]
            .copy_from_slice(buf);
        Ok(())
    }
    fn truncate(&mut self, _: u64) -> vfs_core::Result<()> {
        Ok(())
    }
    fn sync(&mut self, _: vfs_core::SyncFlags) -> vfs_core::Result<()> {
        Ok(())
    }
    fn size(&mut self) -> vfs_core::Result<u64> {
        Ok(16 * 4096)
    }
}

#[test]
fn fetch_and_unfetch_do_not_allocate() {
    let reg = vfs_core::register("no-alloc-lending", Lending, false).unwrap();
    let name = CString::new("no-alloc-lending").unwrap();
    let path: &[u8] = b"lending.db\0\0\0";
    // SAFETY: as in the test above; xFetch/xUnfetch get a writable out
    // pointer and the pointers xFetch answered.
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
        let (fetch, unfetch) = (methods.xFetch.unwrap(), methods.xUnfetch.unwrap());
        let mut held = [std::ptr::null_mut::<std::ffi::c_void>(); 8];
        let ((), allocations) = count_allocations(|| {
            for i in 0..10_000i64 {
                // A cursor's worth of pages held at once, given back.
                for (k, p) in held.iter_mut().enumerate() {
                    let off = ((i + k as i64) % 16) * 4096;
                    assert_eq!(fetch(file, off, 4096, p), 0);
                    assert!(!p.is_null());
                }
                for (k, p) in held.iter().enumerate().rev() {
                    let off = ((i + k as i64) % 16) * 4096;
                    assert_eq!(unfetch(file, off, *p), 0);
                }
            }
        });
        assert_eq!(allocations, 0, "160,000 fetches and unfetches allocated");
        assert_eq!(methods.xClose.unwrap()(file), 0);
    }
    reg.unregister().unwrap();
}
