//! New databases get the codec's reserve: the `vfs_page_reserve` pragma and
//! the connection hook that asks it.

use std::sync::OnceLock;

use vfs_core::codes;

/// The pragma a page layer's main database file answers with the reserved
/// bytes per page of a new database in its stack's format (the sum of the
/// page layers' [`PageCodec::reserve`](crate::PageCodec::reserve)):
/// `PRAGMA vfs_page_reserve`.
pub const RESERVE_PRAGMA: &str = "vfs_page_reserve";

/// Installs (once per process) the hook that requests, on every new
/// connection whose main file answers `PRAGMA vfs_page_reserve`, that many
/// reserved bytes per page.
pub fn install_reserve_hook() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        let hooked = vfs_core::hooks::on_connection(|conn| {
            // Best effort: a connection whose VFS has no page layer answers
            // "not found"; errors never fail the open.
            if let Ok(Some(answer)) = conn.file_control_pragma("main", RESERVE_PRAGMA, None)
                && let Ok(n) = answer.trim().parse::<u8>()
                && n > 0
                && let Err(e) = conn.set_reserve_bytes("main", n)
            {
                vfs_core::log(
                    e.code().unwrap_or(codes::SQLITE_ERROR),
                    &format!("page layer: could not request {n} reserved bytes: {e}"),
                );
            }
            Ok(())
        });
        if let Err(e) = hooked {
            vfs_core::log(
                e.code().unwrap_or(codes::SQLITE_ERROR),
                &format!("page layer: connection hook unavailable: {e}"),
            );
        }
    });
}
