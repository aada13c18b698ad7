//! The type-erased form, for stacks chosen at run time.

use crate::{File, OpenName, OpenOptions, Result, Vfs};

/// A [`Vfs`] whose files are `Box<dyn File>`: `Box<dyn DynVfs>` is the
/// type-erased VFS, itself a `Vfs`. Use it when the stack is chosen at run
/// time (from configuration, say); static stacks compile to direct calls and
/// need none of this.
///
/// [`erase`] turns any `Vfs` into one (boxing its files as they open).
///
/// ```
/// use vfs_core::{DynVfs, Native, erase, register};
/// let chosen: Box<dyn DynVfs> = erase(Native::new().unwrap());
/// let reg = register("erased-doc", chosen, false).unwrap();
/// reg.unregister().unwrap();
/// ```
pub trait DynVfs: Vfs<File = Box<dyn File>> {}

impl<V: Vfs<File = Box<dyn File>>> DynVfs for V {}

/// `vfs` as a [`Box<dyn DynVfs>`](DynVfs): the same VFS, its files boxed.
pub fn erase<V: Vfs>(vfs: V) -> Box<dyn DynVfs> {
    Box::new(BoxFiles(vfs))
}

/// The adapter behind [`erase`]: boxes the files of `V`.
struct BoxFiles<V>(V);

impl<V: Vfs> Vfs for BoxFiles<V> {
    type File = Box<dyn File>;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Box<dyn File>> {
        Ok(Box::new(self.0.open(name, opts)?))
    }
    crate::forward_vfs!(0);
}

impl Vfs for Box<dyn DynVfs> {
    type File = Box<dyn File>;
    fn open(&self, name: &OpenName<'_>, opts: OpenOptions) -> Result<Box<dyn File>> {
        (**self).open(name, opts)
    }
    crate::forward_vfs!(**self);
}

impl File for Box<dyn File> {
    crate::forward_file!(**self);
}
