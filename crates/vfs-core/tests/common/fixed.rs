//! A 64 KiB in-memory VFS whose files never allocate after open: the
//! backend for allocation tests and trampoline micro-benchmarks.

use vfs_core::{AccessCheck, File, FileName, OpenName, OpenOptions, Result, SyncFlags, Vfs};

/// Every file is a private, fixed 64 KiB buffer.
pub struct Fixed;

/// A file of [`Fixed`].
pub struct FixedFile(Box<[u8; 65536]>);

impl Vfs for Fixed {
    type File = FixedFile;
    fn open(&self, _: &OpenName<'_>, _: OpenOptions) -> Result<FixedFile> {
        Ok(FixedFile(Box::new([0; 65536])))
    }
    fn delete(&self, _: &FileName, _: bool) -> Result<()> {
        Ok(())
    }
    fn access(&self, _: &FileName, _: AccessCheck) -> Result<bool> {
        Ok(false)
    }
}

impl File for FixedFile {
    vfs_core::no_lock!();
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let o = offset as usize;
        buf.copy_from_slice(&self.0[o..o + buf.len()]);
        Ok(buf.len())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
        let o = offset as usize;
        self.0[o..o + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn truncate(&mut self, _: u64) -> Result<()> {
        Ok(())
    }
    fn sync(&mut self, _: SyncFlags) -> Result<()> {
        Ok(())
    }
    fn size(&mut self) -> Result<u64> {
        Ok(65536)
    }
}
