//! The C contract checked at the C level: short reads, method-table
//! versions, `pMethods` after a failed open.

mod common;

use std::ffi::CString;

use common::*;
use libsqlite3_sys as ffi;
use vfs_core::Op;

/// A registered VFS's C struct.
fn c_vfs(name: &str) -> *mut ffi::sqlite3_vfs {
    let c = CString::new(name).unwrap();
    // SAFETY: valid C string; the VFS was registered by the test.
    let p = unsafe { ffi::sqlite3_vfs_find(c.as_ptr()) };
    assert!(!p.is_null());
    p
}

/// An open file: SQLite-style memory block of `szOsFile` bytes.
struct CFile {
    mem: Vec<u64>,
}

impl CFile {
    fn open(vfs: *mut ffi::sqlite3_vfs, name: &[u8], flags: i32) -> (CFile, i32) {
        // SAFETY: vfs is a live registered VFS.
        let size = unsafe { (*vfs).szOsFile } as usize;
        // Fill with garbage so a method table left unset would be visible.
        let mut f = CFile {
            mem: vec![u64::MAX; size.div_ceil(8)],
        };
        let mut out = 0;
        // SAFETY: xOpen with a name SQLite-style (NUL-terminated, followed by
        // an empty parameter list), a block of szOsFile bytes and out flags.
        let rc =
            unsafe { (*vfs).xOpen.unwrap()(vfs, name.as_ptr().cast(), f.file(), flags, &mut out) };
        (f, rc)
    }

    fn file(&mut self) -> *mut ffi::sqlite3_file {
        self.mem.as_mut_ptr().cast()
    }

    fn methods(&mut self) -> *const ffi::sqlite3_io_methods {
        // SAFETY: reads the pMethods field of the block.
        unsafe { (*self.file()).pMethods }
    }

    fn read(&mut self, buf: &mut [u8], offset: i64) -> i32 {
        let f = self.file();
        // SAFETY: open file with a valid method table; buf is writable.
        unsafe {
            (*(*f).pMethods).xRead.unwrap()(f, buf.as_mut_ptr().cast(), buf.len() as i32, offset)
        }
    }

    fn write(&mut self, buf: &[u8], offset: i64) -> i32 {
        let f = self.file();
        // SAFETY: open file with a valid method table; buf is readable.
        unsafe {
            (*(*f).pMethods).xWrite.unwrap()(f, buf.as_ptr().cast(), buf.len() as i32, offset)
        }
    }

    fn close(mut self) -> i32 {
        let f = self.file();
        // SAFETY: open file; closed once.
        unsafe { (*(*f).pMethods).xClose.unwrap()(f) }
    }
}

/// A file name laid out as SQLite builds them: the name, its NUL, then an
/// empty list of URI parameters (two more NULs).
fn sqlite_name(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.extend_from_slice(&[0, 0, 0]);
    v
}

const MAIN_RW: i32 =
    ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE;

#[test]
fn short_read_zero_fills_and_reports_short_read() {
    let name = unique_name("short");
    let reg = vfs_core::register(&name, TestVfs::new(false), false).unwrap();
    let vfs = c_vfs(&name);
    let (mut f, rc) = CFile::open(vfs, &sqlite_name("s.db"), MAIN_RW);
    assert_eq!(rc, ffi::SQLITE_OK);
    assert_eq!(f.write(&[7u8; 100], 0), ffi::SQLITE_OK);
    let mut buf = [0xAAu8; 256];
    assert_eq!(f.read(&mut buf, 50), SQLITE_IOERR_SHORT_READ);
    assert!(buf[..50].iter().all(|&b| b == 7), "data part kept");
    assert!(buf[50..].iter().all(|&b| b == 0), "tail zero-filled");
    let mut past = [0xAAu8; 64];
    assert_eq!(f.read(&mut past, 4096), SQLITE_IOERR_SHORT_READ);
    assert!(past.iter().all(|&b| b == 0));
    assert_eq!(f.close(), ffi::SQLITE_OK);
    reg.unregister().unwrap();
}

#[test]
fn method_table_versions_are_honest() {
    for (shm, version) in [(false, 1), (true, 2)] {
        let name = unique_name("version");
        let reg = vfs_core::register(&name, TestVfs::new(shm), false).unwrap();
        let vfs = c_vfs(&name);
        let (mut f, rc) = CFile::open(vfs, &sqlite_name("v.db"), MAIN_RW);
        assert_eq!(rc, ffi::SQLITE_OK);
        // SAFETY: open file, valid table.
        let m = unsafe { &*f.methods() };
        assert_eq!(m.iVersion, version);
        assert_eq!(m.xShmMap.is_some(), shm, "xShm* only with shared memory");
        assert_eq!(m.xShmLock.is_some(), shm);
        assert!(
            m.xFetch.is_none() && m.xUnfetch.is_none(),
            "no version-3 slots"
        );
        // SAFETY: open file; default device characteristics and sector size.
        unsafe {
            let caps = m.xDeviceCharacteristics.unwrap()(f.file());
            assert_eq!(caps & ffi::SQLITE_IOCAP_ATOMIC, 0, "ATOMIC never claimed");
            assert_eq!(m.xSectorSize.unwrap()(f.file()), 4096);
        }
        assert_eq!(f.close(), ffi::SQLITE_OK);
        reg.unregister().unwrap();
    }
}

#[test]
fn failed_open_leaves_pmethods_null() {
    let name = unique_name("nullmethods");
    let vfs_impl = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs_impl.clone(), false).unwrap();
    let vfs = c_vfs(&name);
    vfs_impl.inject(Op::Open, Fault::Io);
    let (mut f, rc) = CFile::open(vfs, &sqlite_name("n.db"), MAIN_RW);
    assert_eq!(rc, ffi::SQLITE_CANTOPEN);
    assert!(f.methods().is_null());
    vfs_impl.clear_faults();
    // Opening a missing file without CREATE also fails cleanly.
    let (mut f, rc) = CFile::open(
        vfs,
        &sqlite_name("missing.db"),
        ffi::SQLITE_OPEN_MAIN_DB | ffi::SQLITE_OPEN_READWRITE,
    );
    assert_eq!(rc, ffi::SQLITE_CANTOPEN);
    assert!(f.methods().is_null());
    assert_eq!(vfs_core::open_files(&name), Some(0));
    reg.unregister().unwrap();
}

#[test]
fn get_last_error_returns_the_backend_message() {
    let name = unique_name("lasterr");
    let vfs_impl = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs_impl.clone(), false).unwrap();
    let vfs = c_vfs(&name);
    let (mut f, rc) = CFile::open(vfs, &sqlite_name("e.db"), MAIN_RW);
    assert_eq!(rc, ffi::SQLITE_OK);
    vfs_impl.inject(Op::Write, Fault::Io);
    assert_eq!(f.write(&[1; 16], 0), ffi::SQLITE_IOERR_WRITE);
    vfs_impl.clear_faults();
    let mut buf = [0 as std::ffi::c_char; 128];
    // SAFETY: xGetLastError writes at most buf.len() bytes, NUL-terminated.
    let errno = unsafe { (*vfs).xGetLastError.unwrap()(vfs, buf.len() as i32, buf.as_mut_ptr()) };
    assert_eq!(errno, 0, "an error without an OS cause has no errno");
    // SAFETY: NUL-terminated by xGetLastError.
    let msg = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
    assert!(
        msg.to_str().unwrap().contains("injected Write I/O error"),
        "{msg:?}"
    );
    assert_eq!(f.close(), ffi::SQLITE_OK);
    reg.unregister().unwrap();
}

/// `xGetLastError(vfs, n, buf)` through the C struct.
fn get_last_error(vfs: *mut ffi::sqlite3_vfs) -> i32 {
    // SAFETY: with no buffer xGetLastError only answers the number.
    unsafe { (*vfs).xGetLastError.unwrap()(vfs, 0, std::ptr::null_mut()) }
}

#[test]
fn get_last_error_answers_the_os_errno_once() {
    const ENOSPC: i32 = 28;
    let name = unique_name("errno");
    let vfs_impl = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs_impl.clone(), false).unwrap();
    let vfs = c_vfs(&name);
    let (mut f, rc) = CFile::open(vfs, &sqlite_name("o.db"), MAIN_RW);
    assert_eq!(rc, ffi::SQLITE_OK);
    vfs_impl.inject(Op::Write, Fault::Os(ENOSPC));
    assert_eq!(f.write(&[1; 16], 0), ffi::SQLITE_IOERR_WRITE);
    // The OS's number, not an SQLite code; then nothing is pending.
    assert_eq!(get_last_error(vfs), ENOSPC);
    assert_eq!(get_last_error(vfs), 0, "reported once");
    // A later failure without an OS cause is not told the old number.
    vfs_impl.inject(Op::Write, Fault::Code(ffi::SQLITE_IOERR_WRITE));
    assert_eq!(f.write(&[1; 16], 0), ffi::SQLITE_IOERR_WRITE);
    assert_eq!(get_last_error(vfs), 0);
    vfs_impl.clear_faults();
    assert_eq!(f.close(), ffi::SQLITE_OK);
    reg.unregister().unwrap();
}

/// `sqlite3_system_errno` after a failed statement, as an application sees it.
fn system_errno(conn: &rusqlite::Connection) -> i32 {
    // SAFETY: a live connection.
    unsafe { ffi::sqlite3_system_errno(conn.handle()) }
}

#[test]
fn sqlite3_system_errno_reports_the_backends_os_error() {
    const EIO: i32 = 5;
    let name = unique_name("syserrno");
    let vfs_impl = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs_impl.clone(), false).unwrap();
    let conn = rusqlite::Connection::open(format!("file:s.db?vfs={name}")).unwrap();
    conn.execute_batch("CREATE TABLE t(x)").unwrap();
    vfs_impl.inject(Op::Write, Fault::Os(EIO));
    conn.execute("INSERT INTO t VALUES (1)", []).unwrap_err();
    assert_eq!(system_errno(&conn), EIO);
    vfs_impl.clear_faults();
    vfs_impl.inject(Op::Sync, Fault::Code(ffi::SQLITE_IOERR_FSYNC));
    conn.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
    assert_eq!(system_errno(&conn), 0, "no OS error behind this one");
    vfs_impl.clear_faults();
    drop(conn);
    reg.unregister().unwrap();
}

/// The errno SQLite reports for opening `path` with `vfs` (which fails).
fn open_errno(path: &std::path::Path, vfs: &str) -> (i32, i32) {
    let path = CString::new(path.to_str().unwrap()).unwrap();
    let vfs = CString::new(vfs).unwrap();
    let mut db = std::ptr::null_mut();
    // SAFETY: valid strings and out-pointer; the handle SQLite returns even
    // on failure is closed below.
    unsafe {
        let rc = ffi::sqlite3_open_v2(
            path.as_ptr(),
            &mut db,
            ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_CREATE,
            vfs.as_ptr(),
        );
        let errno = ffi::sqlite3_system_errno(db);
        ffi::sqlite3_close(db);
        (rc, errno)
    }
}

#[test]
fn the_native_base_reports_the_errno_unix_reports() {
    let name = unique_name("native-errno");
    let reg =
        vfs_core::register(&name, PassThrough(vfs_core::Native::new().unwrap()), false).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir/x.db");
    let unix = open_errno(&missing, "unix");
    assert_eq!(unix.0, ffi::SQLITE_CANTOPEN);
    assert_ne!(unix.1, 0, "unix names the OS error");
    assert_eq!(open_errno(&missing, &name), unix);
    reg.unregister().unwrap();
}

#[test]
fn randomness_with_a_null_buffer_writes_nothing() {
    let name = unique_name("random");
    let reg = vfs_core::register(&name, TestVfs::new(false), false).unwrap();
    let vfs = c_vfs(&name);
    // SAFETY: a live registered VFS.
    let randomness = unsafe { (*vfs).xRandomness.unwrap() };
    // SAFETY: the null buffer is what is under test; xRandomness must not
    // write through it.
    assert_eq!(unsafe { randomness(vfs, 16, std::ptr::null_mut()) }, 0);
    // SAFETY: as above, with nothing asked.
    assert_eq!(unsafe { randomness(vfs, 0, std::ptr::null_mut()) }, 0);
    let mut buf = [0 as std::ffi::c_char; 64];
    // SAFETY: a writable buffer of 64 bytes.
    let n = unsafe { randomness(vfs, 64, buf.as_mut_ptr()) };
    assert_eq!(n, 64);
    assert!(buf.iter().any(|&b| b != 0), "filled");
    reg.unregister().unwrap();
}
