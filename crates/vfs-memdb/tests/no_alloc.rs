//! The read/write path allocates nothing in steady state: a counting global
//! allocator around reads and writes of a database, a journal-style file
//! and a WAL that already have their size (with and without a budget).

use vfs_core::alloc_count::{CountingAllocator, count_allocations};
use vfs_core::{File, FileKind, LockLevel, OpenAccess, OpenName, OpenOptions, SyncFlags, Vfs};
use vfs_memdb::{MemDb, MemFile};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const PAGE: usize = 4096;
const FRAME: usize = 24 + PAGE;

fn open(mem: &MemDb, name: &str, kind: FileKind) -> MemFile {
    mem.open(
        &OpenName::new(name, kind),
        OpenOptions::new(kind, OpenAccess::Create),
    )
    .unwrap()
}

/// A WAL header (magic, version, page size, salts; the checksum does not
/// matter to the VFS).
fn wal_header() -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&0x377f_0682u32.to_be_bytes());
    h[4..8].copy_from_slice(&3_007_000u32.to_be_bytes());
    h[8..12].copy_from_slice(&(PAGE as u32).to_be_bytes());
    h[16..24].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    h
}

fn steady_state(mem: &MemDb) -> u64 {
    let mut db = open(mem, "/a.db", FileKind::MainDb);
    let mut journal = open(mem, "/a.db-journal", FileKind::MainJournal);
    let mut wal = open(mem, "/a.db-wal", FileKind::Wal);
    let mut other = open(mem, "/a.db", FileKind::MainDb);
    // Give every file its size first (this allocates pages).
    let mut page = [7u8; PAGE];
    for i in 0..64 {
        db.write_at(&page, (i * PAGE) as u64).unwrap();
    }
    journal
        .write_at(&vec![0; 41 * (PAGE + 8) + 512], 0)
        .unwrap();
    wal.write_at(&wal_header(), 0).unwrap();
    wal.write_at(&vec![0; 40 * FRAME], 32).unwrap();

    let mut header = [0u8; 100];
    let mut frame_header = [0u8; 24];
    let ((), allocations) = count_allocations(|| {
        for i in 0..5_000usize {
            let n = i % 40;
            // The 100-byte header read, an aligned page read and write.
            assert_eq!(db.read_at(&mut header, 0).unwrap(), 100);
            page[0] = i as u8;
            db.write_at(&page, ((n + 1) * PAGE) as u64).unwrap();
            assert_eq!(
                other.read_at(&mut page, ((n + 1) * PAGE) as u64).unwrap(),
                PAGE
            );
            assert_eq!(page[0], i as u8);
            // A journal record at an unaligned offset: page number, page, sum.
            let at = (n * (PAGE + 8) + 512) as u64;
            journal.write_at(&(n as u32).to_be_bytes(), at).unwrap();
            journal.write_at(&page, at + 4).unwrap();
            journal
                .write_at(&[1, 2, 3, 4], at + 4 + PAGE as u64)
                .unwrap();
            // A WAL frame: 24-byte header (page number n + 1), then the page.
            let at = (32 + n * FRAME) as u64;
            frame_header[..4].copy_from_slice(&(n as u32 + 1).to_be_bytes());
            frame_header[8..16].copy_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
            wal.write_at(&frame_header, at).unwrap();
            wal.write_at(&page, at + 24).unwrap();
            assert_eq!(wal.read_at(&mut page, at + 24).unwrap(), PAGE);
            // A short read at the end of a file.
            assert_eq!(db.read_at(&mut page, (64 * PAGE - 10) as u64).unwrap(), 10);
            // Locks, size, sync.
            db.lock(LockLevel::Shared).unwrap();
            db.lock(LockLevel::Reserved).unwrap();
            db.lock(LockLevel::Exclusive).unwrap();
            assert!(other.check_reserved_lock().unwrap());
            db.unlock(LockLevel::Shared).unwrap();
            db.unlock(LockLevel::None).unwrap();
            assert_eq!(db.size().unwrap(), (64 * PAGE) as u64);
            db.sync(SyncFlags(0)).unwrap();
        }
    });
    allocations
}

#[test]
fn steady_state_reads_and_writes_do_not_allocate() {
    assert_eq!(steady_state(&MemDb::new()), 0, "without a budget");
    assert_eq!(
        steady_state(&MemDb::with_budget(64 << 20)),
        0,
        "with a budget (WAL frames checked against it)"
    );
}
