//! The type-erased form, for stacks chosen at run time.

use std::time::Duration;

use crate::shm::{ShmLockOp, ShmRegion};
use crate::{
    AccessCheck, DeviceCharacteristics, File, FileControl, LockLevel, OpenName, OpenOptions,
    ResolvedPath, Result, ShmSupport, SyncFlags, Vfs,
};

/// An object-safe [`Vfs`]: every `Vfs` is one, and `Box<dyn DynVfs>` is a
/// `Vfs` whose files are `Box<dyn File>`. Use it when the stack is chosen at
/// run time (from configuration, say); static stacks compile to direct calls
/// and need none of this.
///
/// ```
/// use vfs_core::{DynVfs, Native, register};
/// let chosen: Box<dyn DynVfs> = Box::new(Native::new().unwrap());
/// let reg = register("erased-doc", chosen, false).unwrap();
/// reg.unregister().unwrap();
/// ```
pub trait DynVfs: Send + Sync + 'static {
    /// [`Vfs::open`], boxing the file.
    fn open_dyn(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Box<dyn File>>;
    /// [`Vfs::delete`].
    fn delete_dyn(&self, path: &str, sync_dir: bool) -> Result<()>;
    /// [`Vfs::access`].
    fn access_dyn(&self, path: &str, check: AccessCheck) -> Result<bool>;
    /// [`Vfs::full_pathname`].
    fn full_pathname_dyn(&self, path: &str) -> Result<String>;
    /// [`Vfs::resolve_pathname`].
    fn resolve_pathname_dyn(&self, path: &str) -> Result<ResolvedPath>;
    /// [`Vfs::max_pathname`].
    fn max_pathname_dyn(&self) -> usize;
    /// [`Vfs::randomness`].
    fn randomness_dyn(&self, buf: &mut [u8]) -> Option<usize>;
    /// [`Vfs::sleep`].
    fn sleep_dyn(&self, duration: Duration) -> Option<Duration>;
    /// [`Vfs::current_time_ms`].
    fn current_time_ms_dyn(&self) -> Option<i64>;
}

impl<V: Vfs> DynVfs for V {
    fn open_dyn(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Box<dyn File>> {
        Ok(Box::new(self.open(name, opts)?))
    }
    fn delete_dyn(&self, path: &str, sync_dir: bool) -> Result<()> {
        self.delete(path, sync_dir)
    }
    fn access_dyn(&self, path: &str, check: AccessCheck) -> Result<bool> {
        self.access(path, check)
    }
    fn full_pathname_dyn(&self, path: &str) -> Result<String> {
        self.full_pathname(path)
    }
    fn resolve_pathname_dyn(&self, path: &str) -> Result<ResolvedPath> {
        self.resolve_pathname(path)
    }
    fn max_pathname_dyn(&self) -> usize {
        self.max_pathname()
    }
    fn randomness_dyn(&self, buf: &mut [u8]) -> Option<usize> {
        self.randomness(buf)
    }
    fn sleep_dyn(&self, duration: Duration) -> Option<Duration> {
        self.sleep(duration)
    }
    fn current_time_ms_dyn(&self) -> Option<i64> {
        self.current_time_ms()
    }
}

impl Vfs for Box<dyn DynVfs> {
    type File = Box<dyn File>;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Box<dyn File>> {
        (**self).open_dyn(name, opts)
    }
    fn delete(&self, path: &str, sync_dir: bool) -> Result<()> {
        (**self).delete_dyn(path, sync_dir)
    }
    fn access(&self, path: &str, check: AccessCheck) -> Result<bool> {
        (**self).access_dyn(path, check)
    }
    fn full_pathname(&self, path: &str) -> Result<String> {
        (**self).full_pathname_dyn(path)
    }
    fn resolve_pathname(&self, path: &str) -> Result<ResolvedPath> {
        (**self).resolve_pathname_dyn(path)
    }
    fn max_pathname(&self) -> usize {
        (**self).max_pathname_dyn()
    }
    fn randomness(&self, buf: &mut [u8]) -> Option<usize> {
        (**self).randomness_dyn(buf)
    }
    fn sleep(&self, duration: Duration) -> Option<Duration> {
        (**self).sleep_dyn(duration)
    }
    fn current_time_ms(&self) -> Option<i64> {
        (**self).current_time_ms_dyn()
    }
}

impl File for Box<dyn File> {
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        (**self).read_at(buf, offset)
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        (**self).write_at(buf, offset)
    }
    fn truncate(&mut self, size: u64) -> Result<()> {
        (**self).truncate(size)
    }
    fn sync(&mut self, flags: SyncFlags) -> Result<()> {
        (**self).sync(flags)
    }
    fn size(&mut self) -> Result<u64> {
        (**self).size()
    }
    fn lock(&mut self, level: LockLevel) -> Result<()> {
        (**self).lock(level)
    }
    fn unlock(&mut self, level: LockLevel) -> Result<()> {
        (**self).unlock(level)
    }
    fn check_reserved_lock(&mut self) -> Result<bool> {
        (**self).check_reserved_lock()
    }
    fn file_control(&mut self, ctl: &mut FileControl<'_>) -> Result<()> {
        (**self).file_control(ctl)
    }
    fn sector_size(&self) -> u32 {
        (**self).sector_size()
    }
    fn device_characteristics(&self) -> DeviceCharacteristics {
        (**self).device_characteristics()
    }
    fn is_read_only(&self) -> bool {
        (**self).is_read_only()
    }
    fn shm(&self) -> ShmSupport {
        (**self).shm()
    }
    fn shm_map(&mut self, region: u32, size: u32, extend: bool) -> Result<Option<ShmRegion>> {
        (**self).shm_map(region, size, extend)
    }
    fn shm_lock(&mut self, offset: u32, n: u32, op: ShmLockOp) -> Result<()> {
        (**self).shm_lock(offset, n, op)
    }
    fn shm_barrier(&mut self) {
        (**self).shm_barrier()
    }
    fn shm_unmap(&mut self, delete: bool) -> Result<()> {
        (**self).shm_unmap(delete)
    }
}
