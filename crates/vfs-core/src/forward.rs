//! Macros that write the repetitive parts of an `impl Vfs` or `impl File`:
//! forwarding to a base ([`forward_vfs!`](crate::forward_vfs),
//! [`forward_file!`](crate::forward_file)) and locking
//! ([`no_lock!`](crate::no_lock), [`lock_via!`](crate::lock_via)).
//!
//! The [`Vfs`](crate::Vfs) and [`File`](crate::File) method lists are
//! written out once, here: a shim, a wrapper or a smart pointer names only
//! the methods it handles itself, so a method added to a trait reaches every
//! forwarder without a change to any of them (and a forwarder can never
//! silently answer a trait default instead of asking its base).
//!
//! # Adding a method to `Vfs` or `File`
//!
//! Each forwarded method has two rules in its macro, one that skips it
//! (when it heads the `except` list) and one that writes it, each ending by
//! invoking the next method's rules: insert the new method's pair where it
//! sits in the trait and point the previous method's pair at it.

/// Forwards every [`Vfs`](crate::Vfs) method but `open` (and the associated
/// `File` type) to a base: the one line a shim writes for the methods it
/// does not change. The calls name the trait (`Vfs::delete(&base, …)`), so a
/// base with an inherent method of the same name (`MemDb::delete`) still
/// gets the trait's.
///
/// * `forward_vfs!(base)`: to the field `base` (a name, a tuple index, or a
///   path of fields such as `machine.base`);
/// * `forward_vfs!(**self)`: to what `self` points to (for smart pointers
///   and boxes);
/// * `forward_vfs!(base, except delete, access)`: all but the methods
///   named, which the impl writes itself. They are listed in the trait's
///   order: `delete`, `access`, `full_pathname`, `resolve_pathname`,
///   `max_pathname`, `randomness`, `sleep`, `current_time_ms`,
///   `page_layers` (a name out of order or unknown is a compile error).
///   `access_shortcut` goes with `access`: forwarded with it, and left at
///   its default (none) by a shim that answers `access` itself.
///
/// ```
/// use vfs_core::{Native, OpenName, OpenOptions, Result, Vfs};
///
/// struct Shim { base: Native }
///
/// impl Vfs for Shim {
///     type File = <Native as Vfs>::File;
///     fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Self::File> {
///         self.base.open(name, opts)
///     }
///     vfs_core::forward_vfs!(base);
/// }
/// ```
#[macro_export]
macro_rules! forward_vfs {
    (@to $self:ident (deref)) => { (**$self) };
    (@to $self:ident (field $($field:tt).+)) => { $self.$($field).+ };

    (@delete $to:tt [delete $($skip:ident)*]) => {
        $crate::forward_vfs!(@access $to [$($skip)*]);
    };
    (@delete $to:tt $skip:tt) => {
        fn delete(&self, name: &$crate::FileName, sync_dir: bool) -> $crate::Result<()> {
            $crate::Vfs::delete(&$crate::forward_vfs!(@to self $to), name, sync_dir)
        }
        $crate::forward_vfs!(@access $to $skip);
    };
    (@access $to:tt [access $($skip:ident)*]) => {
        $crate::forward_vfs!(@full_pathname $to [$($skip)*]);
    };
    (@access $to:tt $skip:tt) => {
        fn access(
            &self,
            name: &$crate::FileName,
            check: $crate::AccessCheck,
        ) -> $crate::Result<bool> {
            $crate::Vfs::access(&$crate::forward_vfs!(@to self $to), name, check)
        }
        fn access_shortcut(&self) -> ::std::option::Option<$crate::AccessShortcut> {
            $crate::Vfs::access_shortcut(&$crate::forward_vfs!(@to self $to))
        }
        $crate::forward_vfs!(@full_pathname $to $skip);
    };
    (@full_pathname $to:tt [full_pathname $($skip:ident)*]) => {
        $crate::forward_vfs!(@resolve_pathname $to [$($skip)*]);
    };
    (@full_pathname $to:tt $skip:tt) => {
        fn full_pathname(&self, name: &$crate::FileName) -> $crate::Result<$crate::FileNameBuf> {
            $crate::Vfs::full_pathname(&$crate::forward_vfs!(@to self $to), name)
        }
        $crate::forward_vfs!(@resolve_pathname $to $skip);
    };
    (@resolve_pathname $to:tt [resolve_pathname $($skip:ident)*]) => {
        $crate::forward_vfs!(@max_pathname $to [$($skip)*]);
    };
    (@resolve_pathname $to:tt $skip:tt) => {
        fn resolve_pathname(&self, name: &$crate::FileName) -> $crate::Result<$crate::ResolvedPath> {
            $crate::Vfs::resolve_pathname(&$crate::forward_vfs!(@to self $to), name)
        }
        $crate::forward_vfs!(@max_pathname $to $skip);
    };
    (@max_pathname $to:tt [max_pathname $($skip:ident)*]) => {
        $crate::forward_vfs!(@randomness $to [$($skip)*]);
    };
    (@max_pathname $to:tt $skip:tt) => {
        fn max_pathname(&self) -> usize {
            $crate::Vfs::max_pathname(&$crate::forward_vfs!(@to self $to))
        }
        $crate::forward_vfs!(@randomness $to $skip);
    };
    (@randomness $to:tt [randomness $($skip:ident)*]) => {
        $crate::forward_vfs!(@sleep $to [$($skip)*]);
    };
    (@randomness $to:tt $skip:tt) => {
        fn randomness(&self, buf: &mut [u8]) -> ::std::option::Option<usize> {
            $crate::Vfs::randomness(&$crate::forward_vfs!(@to self $to), buf)
        }
        $crate::forward_vfs!(@sleep $to $skip);
    };
    (@sleep $to:tt [sleep $($skip:ident)*]) => {
        $crate::forward_vfs!(@current_time_ms $to [$($skip)*]);
    };
    (@sleep $to:tt $skip:tt) => {
        fn sleep(
            &self,
            duration: ::std::time::Duration,
        ) -> ::std::option::Option<::std::time::Duration> {
            $crate::Vfs::sleep(&$crate::forward_vfs!(@to self $to), duration)
        }
        $crate::forward_vfs!(@current_time_ms $to $skip);
    };
    (@current_time_ms $to:tt [current_time_ms $($skip:ident)*]) => {
        $crate::forward_vfs!(@page_layers $to [$($skip)*]);
    };
    (@current_time_ms $to:tt $skip:tt) => {
        fn current_time_ms(&self) -> ::std::option::Option<i64> {
            $crate::Vfs::current_time_ms(&$crate::forward_vfs!(@to self $to))
        }
        $crate::forward_vfs!(@page_layers $to $skip);
    };
    (@page_layers $to:tt [page_layers $($skip:ident)*]) => {
        $crate::forward_vfs!(@end $to [$($skip)*]);
    };
    (@page_layers $to:tt $skip:tt) => {
        fn page_layers(&self) -> $crate::PageLayers {
            $crate::forward_vfs!(@to self $to).page_layers()
        }
        $crate::forward_vfs!(@end $to $skip);
    };

    (@end $to:tt []) => {};
    (@end $to:tt [$($skip:ident)+]) => {
        ::std::compile_error!(::std::concat!(
            "forward_vfs!: `except ",
            $(::std::stringify!($skip), " ",)+
            "`: not a forwarded Vfs method, or out of the trait's order (delete, access, \
             full_pathname, resolve_pathname, max_pathname, randomness, sleep, current_time_ms, \
             page_layers)"
        ));
    };

    // The entry points: the base, then the methods the impl writes itself.
    (* * self $(, except $($skip:ident),+ $(,)?)?) => {
        $crate::forward_vfs!(@delete (deref) [$($($skip)+)?]);
    };
    ($($field:tt).+ $(, except $($skip:ident),+ $(,)?)?) => {
        $crate::forward_vfs!(@delete (field $($field).+) [$($($skip)+)?]);
    };
}

/// Forwards every [`File`](crate::File) method to a base file: what a shim
/// writes for the methods it does not change.
///
/// * `forward_file!(base)`: to the field `base` (a name, a tuple index, or
///   a path of fields);
/// * `forward_file!(**self)`: to what `self` points to;
/// * `forward_file!(base, except read_at, write_at)`: all but the methods
///   named, which the impl writes itself, listed in the trait's order:
///   `read_at`, `can_fetch`, `fetch`, `unfetch`, `unmap_file`, `write_at`,
///   `truncate`, `sync`, `size`, `lock`, `unlock`, `check_reserved_lock`,
///   `file_control`, `sector_size`, `device_characteristics`,
///   `is_read_only`, `shm`, `shm_map`, `shm_lock`, `shm_barrier`,
///   `shm_unmap` (a name out of order or unknown is a compile error).
///
/// Mapped reads fail closed: when the impl writes its own `read_at` (it
/// transforms, verifies or counts reads), the macro's `can_fetch` answers
/// `false` and its `fetch` lends nothing, since a page SQLite read in place
/// would bypass that `read_at`. Such a shim that still wants its base's
/// mappings writes `can_fetch` and `fetch` itself (as
/// `vfs_observe::Wrap` does, to count them).
///
/// ```
/// use vfs_core::{File, NativeFile, Result};
///
/// /// Counts the bytes written; everything else is the base's.
/// struct Counted { base: NativeFile, written: u64 }
///
/// impl File for Counted {
///     fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
///         self.written += buf.len() as u64;
///         self.base.write_at(buf, offset)
///     }
///     vfs_core::forward_file!(base, except write_at);
/// }
/// ```
///
/// A method named out of the trait's order does not compile (nor would a
/// misspelt one):
///
/// ```compile_fail
/// # use vfs_core::{File, NativeFile, Result};
/// struct Quiet(NativeFile);
///
/// impl File for Quiet {
///     fn write_at(&mut self, _: &[u8], _: u64) -> Result<()> { Ok(()) }
///     fn read_at(&mut self, _: &mut [u8], _: u64) -> Result<usize> { Ok(0) }
///     vfs_core::forward_file!(0, except write_at, read_at);
/// }
/// ```
#[macro_export]
macro_rules! forward_file {
    (@to $self:ident (deref)) => { (**$self) };
    (@to $self:ident (field $($field:tt).+)) => { $self.$($field).+ };

    (@read_at $to:tt [read_at $($skip:ident)*]) => {
        $crate::forward_file!(@can_fetch $to own [$($skip)*]);
    };
    (@read_at $to:tt $skip:tt) => {
        fn read_at(&mut self, buf: &mut [u8], offset: u64) -> $crate::Result<usize> {
            $crate::forward_file!(@to self $to).read_at(buf, offset)
        }
        $crate::forward_file!(@can_fetch $to forwarded $skip);
    };
    // Mapped reads follow `read_at`: a forwarder that reads its own way
    // (`own`) lends no mapping unless it writes `can_fetch` and `fetch`.
    (@can_fetch $to:tt $reads:ident [can_fetch $($skip:ident)*]) => {
        $crate::forward_file!(@fetch $to $reads [$($skip)*]);
    };
    (@can_fetch $to:tt own $skip:tt) => {
        fn can_fetch(&self) -> bool {
            false
        }
        $crate::forward_file!(@fetch $to own $skip);
    };
    (@can_fetch $to:tt forwarded $skip:tt) => {
        fn can_fetch(&self) -> bool {
            $crate::forward_file!(@to self $to).can_fetch()
        }
        $crate::forward_file!(@fetch $to forwarded $skip);
    };
    (@fetch $to:tt $reads:ident [fetch $($skip:ident)*]) => {
        $crate::forward_file!(@unfetch $to [$($skip)*]);
    };
    (@fetch $to:tt own $skip:tt) => {
        fn fetch(
            &mut self,
            _offset: u64,
            _len: usize,
        ) -> $crate::Result<::std::option::Option<$crate::Mapping>> {
            ::std::result::Result::Ok(::std::option::Option::None)
        }
        $crate::forward_file!(@unfetch $to $skip);
    };
    (@fetch $to:tt forwarded $skip:tt) => {
        fn fetch(
            &mut self,
            offset: u64,
            len: usize,
        ) -> $crate::Result<::std::option::Option<$crate::Mapping>> {
            $crate::forward_file!(@to self $to).fetch(offset, len)
        }
        $crate::forward_file!(@unfetch $to $skip);
    };
    (@unfetch $to:tt [unfetch $($skip:ident)*]) => {
        $crate::forward_file!(@unmap_file $to [$($skip)*]);
    };
    (@unfetch $to:tt $skip:tt) => {
        fn unfetch(&mut self, offset: u64, mapping: $crate::Mapping) -> $crate::Result<()> {
            $crate::forward_file!(@to self $to).unfetch(offset, mapping)
        }
        $crate::forward_file!(@unmap_file $to $skip);
    };
    (@unmap_file $to:tt [unmap_file $($skip:ident)*]) => {
        $crate::forward_file!(@write_at $to [$($skip)*]);
    };
    (@unmap_file $to:tt $skip:tt) => {
        fn unmap_file(&mut self) -> $crate::Result<()> {
            $crate::forward_file!(@to self $to).unmap_file()
        }
        $crate::forward_file!(@write_at $to $skip);
    };
    (@write_at $to:tt [write_at $($skip:ident)*]) => {
        $crate::forward_file!(@truncate $to [$($skip)*]);
    };
    (@write_at $to:tt $skip:tt) => {
        fn write_at(&mut self, buf: &[u8], offset: u64) -> $crate::Result<()> {
            $crate::forward_file!(@to self $to).write_at(buf, offset)
        }
        $crate::forward_file!(@truncate $to $skip);
    };
    (@truncate $to:tt [truncate $($skip:ident)*]) => {
        $crate::forward_file!(@sync $to [$($skip)*]);
    };
    (@truncate $to:tt $skip:tt) => {
        fn truncate(&mut self, size: u64) -> $crate::Result<()> {
            $crate::forward_file!(@to self $to).truncate(size)
        }
        $crate::forward_file!(@sync $to $skip);
    };
    (@sync $to:tt [sync $($skip:ident)*]) => {
        $crate::forward_file!(@size $to [$($skip)*]);
    };
    (@sync $to:tt $skip:tt) => {
        fn sync(&mut self, flags: $crate::SyncFlags) -> $crate::Result<()> {
            $crate::forward_file!(@to self $to).sync(flags)
        }
        $crate::forward_file!(@size $to $skip);
    };
    (@size $to:tt [size $($skip:ident)*]) => {
        $crate::forward_file!(@lock $to [$($skip)*]);
    };
    (@size $to:tt $skip:tt) => {
        fn size(&mut self) -> $crate::Result<u64> {
            $crate::forward_file!(@to self $to).size()
        }
        $crate::forward_file!(@lock $to $skip);
    };
    (@lock $to:tt [lock $($skip:ident)*]) => {
        $crate::forward_file!(@unlock $to [$($skip)*]);
    };
    (@lock $to:tt $skip:tt) => {
        fn lock(&mut self, level: $crate::LockLevel) -> $crate::Result<()> {
            $crate::forward_file!(@to self $to).lock(level)
        }
        $crate::forward_file!(@unlock $to $skip);
    };
    (@unlock $to:tt [unlock $($skip:ident)*]) => {
        $crate::forward_file!(@check_reserved_lock $to [$($skip)*]);
    };
    (@unlock $to:tt $skip:tt) => {
        fn unlock(&mut self, level: $crate::LockLevel) -> $crate::Result<()> {
            $crate::forward_file!(@to self $to).unlock(level)
        }
        $crate::forward_file!(@check_reserved_lock $to $skip);
    };
    (@check_reserved_lock $to:tt [check_reserved_lock $($skip:ident)*]) => {
        $crate::forward_file!(@file_control $to [$($skip)*]);
    };
    (@check_reserved_lock $to:tt $skip:tt) => {
        fn check_reserved_lock(&mut self) -> $crate::Result<bool> {
            $crate::forward_file!(@to self $to).check_reserved_lock()
        }
        $crate::forward_file!(@file_control $to $skip);
    };
    (@file_control $to:tt [file_control $($skip:ident)*]) => {
        $crate::forward_file!(@sector_size $to [$($skip)*]);
    };
    (@file_control $to:tt $skip:tt) => {
        fn file_control(&mut self, ctl: &mut $crate::FileControl<'_>) -> $crate::Result<()> {
            $crate::forward_file!(@to self $to).file_control(ctl)
        }
        $crate::forward_file!(@sector_size $to $skip);
    };
    (@sector_size $to:tt [sector_size $($skip:ident)*]) => {
        $crate::forward_file!(@device_characteristics $to [$($skip)*]);
    };
    (@sector_size $to:tt $skip:tt) => {
        fn sector_size(&self) -> u32 {
            $crate::forward_file!(@to self $to).sector_size()
        }
        $crate::forward_file!(@device_characteristics $to $skip);
    };
    (@device_characteristics $to:tt [device_characteristics $($skip:ident)*]) => {
        $crate::forward_file!(@is_read_only $to [$($skip)*]);
    };
    (@device_characteristics $to:tt $skip:tt) => {
        fn device_characteristics(&self) -> $crate::DeviceCharacteristics {
            $crate::forward_file!(@to self $to).device_characteristics()
        }
        $crate::forward_file!(@is_read_only $to $skip);
    };
    (@is_read_only $to:tt [is_read_only $($skip:ident)*]) => {
        $crate::forward_file!(@shm $to [$($skip)*]);
    };
    (@is_read_only $to:tt $skip:tt) => {
        fn is_read_only(&self) -> bool {
            $crate::forward_file!(@to self $to).is_read_only()
        }
        $crate::forward_file!(@shm $to $skip);
    };
    (@shm $to:tt [shm $($skip:ident)*]) => {
        $crate::forward_file!(@shm_map $to [$($skip)*]);
    };
    (@shm $to:tt $skip:tt) => {
        fn shm(&self) -> $crate::ShmSupport {
            $crate::forward_file!(@to self $to).shm()
        }
        $crate::forward_file!(@shm_map $to $skip);
    };
    (@shm_map $to:tt [shm_map $($skip:ident)*]) => {
        $crate::forward_file!(@shm_lock $to [$($skip)*]);
    };
    (@shm_map $to:tt $skip:tt) => {
        fn shm_map(
            &mut self,
            region: u32,
            size: u32,
            extend: bool,
        ) -> $crate::Result<::std::option::Option<$crate::ShmRegion>> {
            $crate::forward_file!(@to self $to).shm_map(region, size, extend)
        }
        $crate::forward_file!(@shm_lock $to $skip);
    };
    (@shm_lock $to:tt [shm_lock $($skip:ident)*]) => {
        $crate::forward_file!(@shm_barrier $to [$($skip)*]);
    };
    (@shm_lock $to:tt $skip:tt) => {
        fn shm_lock(&mut self, offset: u32, n: u32, op: $crate::ShmLockOp) -> $crate::Result<()> {
            $crate::forward_file!(@to self $to).shm_lock(offset, n, op)
        }
        $crate::forward_file!(@shm_barrier $to $skip);
    };
    (@shm_barrier $to:tt [shm_barrier $($skip:ident)*]) => {
        $crate::forward_file!(@shm_unmap $to [$($skip)*]);
    };
    (@shm_barrier $to:tt $skip:tt) => {
        fn shm_barrier(&mut self) {
            $crate::forward_file!(@to self $to).shm_barrier()
        }
        $crate::forward_file!(@shm_unmap $to $skip);
    };
    (@shm_unmap $to:tt [shm_unmap $($skip:ident)*]) => {
        $crate::forward_file!(@end $to [$($skip)*]);
    };
    (@shm_unmap $to:tt $skip:tt) => {
        fn shm_unmap(&mut self, delete: bool) -> $crate::Result<()> {
            $crate::forward_file!(@to self $to).shm_unmap(delete)
        }
        $crate::forward_file!(@end $to $skip);
    };

    (@end $to:tt []) => {};
    (@end $to:tt [$($skip:ident)+]) => {
        ::std::compile_error!(::std::concat!(
            "forward_file!: `except ",
            $(::std::stringify!($skip), " ",)+
            "`: not a File method, or out of the trait's order (read_at, can_fetch, fetch, \
             unfetch, unmap_file, write_at, truncate, sync, size, lock, unlock, \
             check_reserved_lock, file_control, sector_size, device_characteristics, \
             is_read_only, shm, shm_map, shm_lock, shm_barrier, shm_unmap)"
        ));
    };

    // The entry points: the base, then the methods the impl writes itself.
    (* * self $(, except $($skip:ident),+ $(,)?)?) => {
        $crate::forward_file!(@read_at (deref) [$($($skip)+)?]);
    };
    ($($field:tt).+ $(, except $($skip:ident),+ $(,)?)?) => {
        $crate::forward_file!(@read_at (field $($field).+) [$($($skip)+)?]);
    };
}

/// Accept-every-lock locking: the explicit, one-line opt-out for a backend
/// whose files are only ever used by one connection. Expands to `lock`,
/// `unlock` and `check_reserved_lock` inside an `impl File`.
///
/// ```
/// use vfs_core::{File, Result, SyncFlags};
///
/// struct Scratch(Vec<u8>);
///
/// impl File for Scratch {
///     vfs_core::no_lock!();
///
///     fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
///         let start = (offset as usize).min(self.0.len());
///         let n = buf.len().min(self.0.len() - start);
///         buf[..n].copy_from_slice(&self.0[start..start + n]);
///         Ok(n)
///     }
///     fn write_at(&mut self, buf: &[u8], offset: u64) -> Result<()> {
///         let end = offset as usize + buf.len();
///         if self.0.len() < end { self.0.resize(end, 0); }
///         self.0[offset as usize..end].copy_from_slice(buf);
///         Ok(())
///     }
///     fn truncate(&mut self, size: u64) -> Result<()> { self.0.truncate(size as usize); Ok(()) }
///     fn sync(&mut self, _: SyncFlags) -> Result<()> { Ok(()) }
///     fn size(&mut self) -> Result<u64> { Ok(self.0.len() as u64) }
/// }
/// ```
#[macro_export]
macro_rules! no_lock {
    () => {
        fn lock(&mut self, _level: $crate::LockLevel) -> $crate::Result<()> {
            Ok(())
        }
        fn unlock(&mut self, _level: $crate::LockLevel) -> $crate::Result<()> {
            Ok(())
        }
        fn check_reserved_lock(&mut self) -> $crate::Result<bool> {
            Ok(false)
        }
    };
}

/// SQLite's locking through a [`FileLock`](crate::FileLock) field: expands
/// to `lock`, `unlock` and `check_reserved_lock` inside an `impl File`,
/// answered by the field `$field` (a name, a tuple index or a path of
/// fields), which is usually
/// [`LockManager::connect`](crate::LockManager::connect)'s handle.
///
/// ```
/// use std::sync::Arc;
/// use vfs_core::{File, FileLock, LockManager, Result, SyncFlags};
///
/// /// An empty file shared by many connections, locked like SQLite's own.
/// struct Shared { lock: FileLock }
///
/// impl File for Shared {
///     vfs_core::lock_via!(lock);
///
///     fn read_at(&mut self, _: &mut [u8], _: u64) -> Result<usize> { Ok(0) }
///     fn write_at(&mut self, _: &[u8], _: u64) -> Result<()> { Ok(()) }
///     fn truncate(&mut self, _: u64) -> Result<()> { Ok(()) }
///     fn sync(&mut self, _: SyncFlags) -> Result<()> { Ok(()) }
///     fn size(&mut self) -> Result<u64> { Ok(0) }
/// }
///
/// let manager: Arc<LockManager> = LockManager::new();
/// let (mut a, mut b) = (Shared { lock: manager.connect() }, Shared { lock: manager.connect() });
/// a.lock(vfs_core::LockLevel::Shared)?;
/// a.lock(vfs_core::LockLevel::Reserved)?;
/// assert!(b.check_reserved_lock()?);
/// # Ok::<(), vfs_core::Error>(())
/// ```
#[macro_export]
macro_rules! lock_via {
    ($($field:tt).+) => {
        fn lock(&mut self, level: $crate::LockLevel) -> $crate::Result<()> {
            self.$($field).+.lock(level)
        }
        fn unlock(&mut self, level: $crate::LockLevel) -> $crate::Result<()> {
            self.$($field).+.unlock(level)
        }
        fn check_reserved_lock(&mut self) -> $crate::Result<bool> {
            Ok(self.$($field).+.check_reserved())
        }
    };
}
