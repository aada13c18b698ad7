//! Differences from SQLite's `unix` VFS that are understood.
//!
//! Each entry names the stacks, the script, the tests (`*` patterns; the
//! pseudo-test `<abort>` stands for "the script stops on a Tcl error") and
//! one reason from [`Reason`]. `docs/testing.md` ("SQLite's own test
//! programs") explains every reason at length; keep the two in step. A
//! difference not listed here fails the run.

use super::tcl::{Diff, matches};

/// Why a stack behaves differently from `unix` in a test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Stacks that transform pages (cksm, crypto: the page layer) lend no
    /// memory mapping (`xFetch`), since a page SQLite read in place would
    /// bypass the transform; the layer does not answer
    /// `SQLITE_FCNTL_MMAP_SIZE`, so `PRAGMA mmap_size` returns no row and
    /// scripts that count mapped pages or expect a size see the difference.
    NoMmap,
    /// The script drives the `unix` VFS's system-call hooks
    /// (`xSetSystemCall`, through `test_syscall`) on the default VFS;
    /// vfs-core's VFSes do not offer them.
    NoSyscallHooks,
    /// cksm verifies page 1 even when its header is damaged: a test that
    /// breaks the magic string gets `SQLITE_IOERR_DATA` ("disk I/O error")
    /// where `unix` and SQLite's cksumvfs (which only verifies once the
    /// header reads as a database) answer `SQLITE_NOTADB`.
    CksmDetects,
    /// cksm refuses to write a page 1 that would change the reserved bytes
    /// of a checksummed database (it would silently drop the checksums):
    /// `sqlite_dbpage` writes of such a page fail with an I/O error.
    CksmFormatGuard,
    /// Stacks that encrypt pages (vfs-crypto over the page layer) fix the
    /// page size once page 1 exists: `PRAGMA page_size = N` on an existing
    /// database is swallowed, as SQLite's cksumvfs does (a change rewrites
    /// pages in pieces of the old size, and a page cannot be encrypted from
    /// pieces; cksm follows such changes).
    PageSizeFixed,
    /// The script edits bytes of a checksummed database file directly, not
    /// through the VFS, with `hexio_write` (`sql36231` in tester.tcl puts
    /// back header bytes 28–31 and 92–99 to imitate a pre-3.7.0 writer;
    /// pager1-18 damages overflow and b-tree pages), so the page no longer
    /// matches its checksum: `SQLITE_IOERR_DATA` ("disk I/O error") where
    /// `unix` reads the edited bytes (and may report corruption). SQLite's
    /// cksumvfs stops earlier in the same scripts, on its own faults, so
    /// the comparison with it cannot show these.
    CksmRawEdit,
}

impl Reason {
    pub fn text(self) -> &'static str {
        match self {
            Reason::NoMmap => {
                "page-transforming stacks lend no memory mapping (reads in place would bypass \
                 the transform)"
            }
            Reason::NoSyscallHooks => {
                "test_syscall needs unix's xSetSystemCall, which vfs-core's VFSes do not offer"
            }
            Reason::CksmDetects => {
                "cksm verifies page 1 even with a damaged header (IOERR_DATA, not NOTADB)"
            }
            Reason::CksmFormatGuard => {
                "cksm refuses a page-1 write that changes the reserve of a checksummed file"
            }
            Reason::PageSizeFixed => {
                "encrypting stacks ignore PRAGMA page_size on an existing database"
            }
            Reason::CksmRawEdit => {
                "the script edits the checksummed file directly (hexio_write), so the page no \
                 longer verifies (disk I/O error)"
            }
        }
    }
}

struct Known {
    stacks: &'static [&'static str],
    script: &'static str,
    tests: &'static [&'static str],
    reason: Reason,
}

/// Stacks whose files go through vfs-core (every stack of the extension).
const ALL: &[&str] = &["*"];
/// Stacks that checksum pages.
const CKSM: &[&str] = &["cksm", "cksm-crc32", "cksm-mem", "crypto-cksm"];
/// Stacks that encrypt pages.
const CRYPTO: &[&str] = &["crypto", "crypto-cksm", "crypto-mem"];
/// Stacks over the page layer (checksums, encryption).
const PAGED: &[&str] = &[
    "cksm",
    "cksm-crc32",
    "cksm-mem",
    "crypto",
    "crypto-cksm",
    "crypto-mem",
];

const fn k(
    stacks: &'static [&'static str],
    script: &'static str,
    tests: &'static [&'static str],
    reason: Reason,
) -> Known {
    Known {
        stacks,
        script,
        tests,
        reason,
    }
}

const TCL: &[Known] = &[
    // Memory mapping: not under a page transform.
    k(PAGED, "mmap1.test", &["mmap1-*"], Reason::NoMmap),
    k(PAGED, "mmap3.test", &["mmap3-*"], Reason::NoMmap),
    k(
        PAGED,
        "incrvacuum.test",
        &["incrvacuum-16.1"],
        Reason::NoMmap,
    ),
    // test_syscall.
    k(ALL, "mmap2.test", &["<abort>"], Reason::NoSyscallHooks),
    k(ALL, "syscall.test", &["<abort>"], Reason::NoSyscallHooks),
    k(ALL, "wal64k.test", &["<abort>"], Reason::NoSyscallHooks),
    k(ALL, "oserror.test", &["<abort>"], Reason::NoSyscallHooks),
    // Checksums (beyond what SQLite's cksumvfs shows too).
    k(
        CKSM,
        "corrupt2.test",
        &["corrupt2-1.2"],
        Reason::CksmDetects,
    ),
    k(
        CKSM,
        "corruptK.test",
        &["corruptK-3.2", "corruptK-3.3"],
        Reason::CksmFormatGuard,
    ),
    k(
        CKSM,
        "pager1.test",
        &[
            "pager1-18.3.2",
            "pager1-18.3.4",
            "pager1-18.4",
            "pager1-18.6",
        ],
        Reason::CksmRawEdit,
    ),
    // The fault scripts (part `faults`).
    k(
        CKSM,
        "pagerfault.test",
        &["pagerfault-22-*"],
        Reason::CksmRawEdit,
    ),
];

/// (stacks, script, journal modes, the exact error count, reason).
type MpKnown = (
    &'static [&'static str],
    &'static str,
    &'static [&'static str],
    u32,
    Reason,
);

const MPTEST: &[MpKnown] = &[
    // config02 sets page sizes 1024, 2048, 8192, 16384 with VACUUM and
    // checks each in every client: 4 errors.
    (
        CRYPTO,
        "config02",
        &["DELETE", "PERSIST", "TRUNCATE"],
        4,
        Reason::PageSizeFixed,
    ),
];

/// The explanation of a checksumming stack's difference that SQLite's own
/// cksumvfs (with the same 8 reserved bytes) shows too.
pub const SAME_AS_CKSUMVFS: &str =
    "same difference on SQLite's own cksumvfs with 8 reserved bytes (checksums themselves)";

/// Whether `stack` checksums pages (its differences are also compared
/// with SQLite's cksumvfs).
pub fn checksums(stack: &str) -> bool {
    stack_in(CKSM, stack)
}

fn stack_in(list: &[&str], stack: &str) -> bool {
    list.iter().any(|s| *s == "*" || *s == stack)
}

/// The reason a TCL-suite difference is expected, if it is.
pub fn tcl(stack: &str, script: &str, diff: &Diff) -> Option<&'static str> {
    TCL.iter()
        .find(|e| {
            e.script == script
                && stack_in(e.stacks, stack)
                && match diff {
                    Diff::NewFailure(t) => e.tests.iter().any(|p| *p != "<abort>" && matches(p, t)),
                    Diff::Aborted(_) => e.tests.contains(&"<abort>"),
                    Diff::TimedOut | Diff::MoreErrors(..) => false,
                }
        })
        .map(|e| e.reason.text())
}

/// speedtest1 runs a stack refuses by design: (stacks, journal mode, a
/// piece of the error speedtest1 prints, the reason).
const SPEEDTEST1: &[(&[&str], &str, &str, &str)] = &[(
    &["mvcc"],
    "wal",
    "journal_mode=WAL is not available",
    "vfs-mvcc refuses WAL by design (its readers never block in rollback mode)",
)];

/// The reason a failed speedtest1 run is expected, if it is (`output` is
/// what it printed).
pub fn speedtest1(stack: &str, journal: &str, output: &str) -> Option<&'static str> {
    SPEEDTEST1
        .iter()
        .find(|(stacks, j, msg, _)| {
            stack_in(stacks, stack) && *j == journal && output.contains(msg)
        })
        .map(|(_, _, _, r)| *r)
}

/// The reason an mptest run with `errors` errors is expected, if it is.
pub fn mptest(stack: &str, script: &str, mode: &str, errors: u32) -> Option<&'static str> {
    MPTEST
        .iter()
        .find(|(stacks, s, modes, n, _)| {
            *s == script && stack_in(stacks, stack) && modes.contains(&mode) && *n == errors
        })
        .map(|(_, _, _, _, r)| r.text())
}
