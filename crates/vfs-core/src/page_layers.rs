//! What the page layers of a stack claim of every page: the answer of
//! [`Vfs::page_layers`](crate::Vfs::page_layers), and the check
//! [`register`](crate::register) makes before SQLite sees a stack.

use std::fmt;

use crate::{Error, Result, codes};

/// The smallest usable part of a page SQLite accepts: page size minus
/// reserved bytes must be at least this (SQLite refuses a larger reserve
/// and treats a header that breaks it as corrupt).
pub const MIN_USABLE_SIZE: usize = 480;

/// The largest total reserve the database header can record (byte 20).
pub const MAX_RESERVE: usize = 255;

/// SQLite's smallest page size.
const SMALLEST_PAGE: usize = 512;

/// One page layer of a stack: a layer that claims bytes at the end of every
/// page of a database (a checksum trailer, an encryption nonce and tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PageLayer {
    /// The layer's name in messages (`"cksm"`, `"crypto"`).
    pub name: &'static str,
    /// The reserved bytes at the end of each page the layer claims for
    /// itself (for a new database).
    pub reserve: usize,
    /// The smallest page size the layer handles.
    pub min_page_size: usize,
}

/// The page layers of a VFS stack, lowest (nearest the storage) first: what
/// [`Vfs::page_layers`](crate::Vfs::page_layers) answers. A plain backend
/// has none; a page layer answers its base's list with itself pushed on top.
///
/// Each layer's slice of the reserved bytes is counted from the end of the
/// page, the lowest layer last, so the bytes a layer finds **below** its own
/// slice are the sum of the slices before it in this list.
///
/// ```
/// use vfs_core::{PageLayer, PageLayers};
///
/// let mut stack = PageLayers::default();
/// stack.push(PageLayer { name: "cksm", reserve: 8, min_page_size: 512 });
/// stack.push(PageLayer { name: "crypto", reserve: 48, min_page_size: 1024 });
/// assert_eq!(stack.reserve(), 56);
/// assert_eq!(stack.min_page_size(), 1024);
/// assert_eq!(stack.to_string(), "crypto (48 bytes) over cksm (8 bytes)");
/// stack.check()?;
/// # Ok::<(), vfs_core::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PageLayers {
    layers: Vec<PageLayer>,
}

impl PageLayers {
    /// Adds `layer` on top of the others.
    pub fn push(&mut self, layer: PageLayer) {
        self.layers.push(layer);
    }

    /// The layers, lowest first.
    pub fn layers(&self) -> &[PageLayer] {
        &self.layers
    }

    /// Whether there is no page layer.
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// The reserved bytes per page of a new database: the sum of the
    /// layers' slices.
    pub fn reserve(&self) -> usize {
        self.layers.iter().map(|l| l.reserve).sum()
    }

    /// The smallest page size every layer handles (512, SQLite's smallest,
    /// without layers).
    pub fn min_page_size(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.min_page_size)
            .fold(SMALLEST_PAGE, usize::max)
    }

    /// Whether a database can be stored through these layers: their total
    /// reserve fits the header's byte (at most [`MAX_RESERVE`]) and leaves at
    /// least [`MIN_USABLE_SIZE`] usable bytes in a page of the smallest size
    /// they all accept. [`register`](crate::register) refuses a stack that
    /// fails it (`SQLITE_MISUSE`, naming the layers).
    pub fn check(&self) -> Result<()> {
        let reserve = self.reserve();
        if reserve > MAX_RESERVE {
            return Err(Error::new(
                codes::SQLITE_MISUSE,
                format!(
                    "the page layers {self} claim {reserve} reserved bytes per page; the \
                     database header records at most {MAX_RESERVE}"
                ),
            ));
        }
        let page = self.min_page_size();
        if page < reserve + MIN_USABLE_SIZE {
            let narrowest = self
                .layers
                .iter()
                .rev()
                .find(|l| l.min_page_size == page)
                .map_or("SQLite", |l| l.name);
            return Err(Error::new(
                codes::SQLITE_MISUSE,
                format!(
                    "the page layers {self} claim {reserve} reserved bytes per page, which \
                     leaves {} usable bytes in the {page}-byte pages {narrowest} accepts; \
                     SQLite needs at least {MIN_USABLE_SIZE}",
                    page.saturating_sub(reserve)
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for PageLayers {
    /// The layers from the top: `crypto (48 bytes) over cksm (8 bytes)`, or
    /// `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.layers.is_empty() {
            return f.write_str("none");
        }
        for (i, l) in self.layers.iter().rev().enumerate() {
            if i > 0 {
                f.write_str(" over ")?;
            }
            write!(f, "{} ({} bytes)", l.name, l.reserve)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(name: &'static str, reserve: usize, min_page_size: usize) -> PageLayer {
        PageLayer {
            name,
            reserve,
            min_page_size,
        }
    }

    #[test]
    fn a_plain_stack_has_no_reserve_and_passes() {
        let none = PageLayers::default();
        assert_eq!((none.reserve(), none.min_page_size()), (0, 512));
        assert_eq!(none.to_string(), "none");
        none.check().unwrap();
    }

    #[test]
    fn more_than_255_reserved_bytes_is_refused_naming_the_layers() {
        let mut s = PageLayers::default();
        for _ in 0..6 {
            s.push(layer("crypto", 48, 1024));
        }
        let e = s.check().unwrap_err();
        assert_eq!(e.code(), Some(codes::SQLITE_MISUSE));
        assert!(e.message().contains("crypto (48 bytes) over crypto"), "{e}");
        assert!(e.message().contains("288 reserved bytes"), "{e}");
    }

    #[test]
    fn too_few_usable_bytes_at_the_smallest_page_is_refused() {
        let mut s = PageLayers::default();
        s.push(layer("cksm", 8, 512));
        s.push(layer("wide", 40, 512));
        let e = s.check().unwrap_err();
        assert!(e.message().contains("leaves 464 usable bytes"), "{e}");
        assert!(e.message().contains("512-byte pages wide accepts"), "{e}");
        // The same slices with a layer that needs 1024-byte pages fit.
        s.push(layer("crypto", 48, 1024));
        s.check().unwrap();
        assert_eq!(s.reserve(), 96);
    }
}
