//! The lock manager and the WAL lock table against reference models, over
//! long seeded random operation sequences, and under real threads: exclusive
//! sections never overlap another holder. (The lock manager keeps its state
//! in one atomic word changed by one compare-and-swap per operation, the
//! WAL lock table one atomic word per slot, with a mutex only for exclusive
//! requests over several slots: either way every interleaving of threads
//! is meant to be some sequence of whole operations; the model runs check
//! every answer of such sequences, the threaded runs check that the
//! operations really are whole.)

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;

use vfs_core::codes::{SQLITE_BUSY, SQLITE_IOERR_LOCK};
use vfs_core::shm::SHM_LOCK_SLOTS;
use vfs_core::{LockLevel, LockManager, ShmGroup, ShmLockOp};

/// Iterations a thread stays inside a locked section, re-checking that
/// nobody conflicting is inside too.
const SECTION: usize = 200;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// What an operation answered: OK, BUSY, or another code.
fn outcome(r: vfs_core::Result<()>) -> i32 {
    match r {
        Ok(()) => 0,
        Err(e) => e.code().unwrap_or(-1),
    }
}

const LEVELS: [LockLevel; 5] = [
    LockLevel::None,
    LockLevel::Shared,
    LockLevel::Reserved,
    LockLevel::Pending,
    LockLevel::Exclusive,
];

/// SQLite's rules for one file's locks, written as conditions on the other
/// connections' levels (the implementation keeps counters instead).
fn model_lock(levels: &mut [LockLevel], me: usize, want: LockLevel) -> i32 {
    let cur = levels[me];
    if want <= cur {
        return 0;
    }
    let others = || levels.iter().enumerate().filter(move |(i, _)| *i != me);
    let other_at_least = |l: LockLevel| others().any(|(_, x)| *x >= l);
    match want {
        LockLevel::None => 0,
        LockLevel::Shared => {
            if other_at_least(LockLevel::Pending) {
                SQLITE_BUSY
            } else {
                levels[me] = LockLevel::Shared;
                0
            }
        }
        LockLevel::Reserved => {
            if cur < LockLevel::Shared {
                SQLITE_IOERR_LOCK
            } else if other_at_least(LockLevel::Reserved) {
                SQLITE_BUSY
            } else {
                levels[me] = LockLevel::Reserved;
                0
            }
        }
        LockLevel::Pending | LockLevel::Exclusive => {
            if cur < LockLevel::Shared {
                SQLITE_IOERR_LOCK
            } else if other_at_least(LockLevel::Reserved) {
                SQLITE_BUSY
            } else if want == LockLevel::Pending {
                levels[me] = LockLevel::Pending;
                0
            } else if other_at_least(LockLevel::Shared) {
                levels[me] = LockLevel::Pending;
                SQLITE_BUSY
            } else {
                levels[me] = LockLevel::Exclusive;
                0
            }
        }
    }
}

#[test]
fn lock_manager_answers_like_the_model_over_random_sequences() {
    const HANDLES: usize = 4;
    let mut rng = Rng(0x5eed_0001);
    let mut checked = 0u64;
    for _run in 0..50 {
        let file = LockManager::new();
        let mut handles: Vec<_> = (0..HANDLES).map(|_| file.connect()).collect();
        let mut model = [LockLevel::None; HANDLES];
        for step in 0..4_000 {
            let me = rng.below(HANDLES as u64) as usize;
            let level = LEVELS[rng.below(5) as usize];
            let (got, want) = if rng.below(3) == 0 {
                // Unlock to Shared or None (SQLite never asks for more).
                let to = [LockLevel::None, LockLevel::Shared][rng.below(2) as usize];
                let got = outcome(handles[me].unlock(to));
                if to < model[me] {
                    model[me] = to.min(LockLevel::Shared);
                }
                (got, 0)
            } else {
                (
                    outcome(handles[me].lock(level)),
                    model_lock(&mut model, me, level),
                )
            };
            assert_eq!(
                got, want,
                "step {step}: handle {me}, {level:?}, model {model:?}"
            );
            for (h, m) in handles.iter().zip(&model) {
                assert_eq!(h.level(), *m, "step {step}: levels diverged");
            }
            let writers = model.iter().filter(|l| **l >= LockLevel::Reserved).count();
            assert!(writers <= 1, "step {step}: two writers {model:?}");
            if model.contains(&LockLevel::Exclusive) {
                let holders = model.iter().filter(|l| **l >= LockLevel::Shared).count();
                assert_eq!(holders, 1, "step {step}: EXCLUSIVE beside others {model:?}");
            }
            let readers = model.iter().filter(|l| **l >= LockLevel::Shared).count();
            assert_eq!(file.readers() as usize, readers, "step {step}");
            assert_eq!(file.is_reserved(), writers == 1, "step {step}");
            checked += 1;
        }
        drop(handles);
        assert_eq!(
            file.readers(),
            0,
            "dropping every handle releases every lock"
        );
        assert!(!file.is_reserved());
    }
    assert_eq!(checked, 200_000);
}

/// Per slot: the shared holders and the exclusive one.
#[derive(Clone, Copy, Default, Debug)]
struct SlotModel {
    shared: u8, // bit per connection
    excl: Option<usize>,
}

fn model_shm(slots: &mut [SlotModel], me: usize, offset: usize, n: usize, op: ShmLockOp) -> i32 {
    let bit = 1u8 << me;
    let range = offset..offset + n;
    match op {
        ShmLockOp::UnlockShared | ShmLockOp::UnlockExclusive => {
            for s in &mut slots[range] {
                s.shared &= !bit;
                if s.excl == Some(me) {
                    s.excl = None;
                }
            }
            0
        }
        ShmLockOp::LockShared => {
            let s = &mut slots[offset];
            if s.shared & bit != 0 || s.excl == Some(me) {
                0
            } else if s.excl.is_some() {
                SQLITE_BUSY
            } else {
                s.shared |= bit;
                0
            }
        }
        ShmLockOp::LockExclusive => {
            if slots[range.clone()].iter().all(|s| s.excl == Some(me)) {
                return 0;
            }
            // Anyone else, or this connection's own shared lock, blocks.
            if slots[range.clone()]
                .iter()
                .any(|s| s.shared != 0 || s.excl.is_some_and(|o| o != me))
            {
                return SQLITE_BUSY;
            }
            for s in &mut slots[range] {
                s.excl = Some(me);
            }
            0
        }
    }
}

#[test]
fn wal_lock_table_answers_like_the_model_over_random_sequences() {
    const CONNS: usize = 4;
    let slots_n = SHM_LOCK_SLOTS as usize;
    let mut rng = Rng(0x5eed_0002);
    let ops = [
        ShmLockOp::LockShared,
        ShmLockOp::LockExclusive,
        ShmLockOp::UnlockShared,
        ShmLockOp::UnlockExclusive,
    ];
    for _run in 0..50 {
        let group = ShmGroup::new();
        let mut conns: Vec<_> = (0..CONNS).map(|_| group.connect()).collect();
        let mut model = vec![SlotModel::default(); slots_n];
        for step in 0..4_000 {
            let me = rng.below(CONNS as u64) as usize;
            let op = ops[rng.below(4) as usize];
            let offset = rng.below(slots_n as u64) as usize;
            let n = if op == ShmLockOp::LockShared {
                1
            } else {
                1 + rng.below((slots_n - offset) as u64) as usize
            };
            let got = outcome(conns[me].lock(offset as u32, n as u32, op));
            let want = model_shm(&mut model, me, offset, n, op);
            assert_eq!(got, want, "step {step}: conn {me} {op:?} {offset}+{n}");
            for (i, c) in conns.iter().enumerate() {
                let shared = (0..slots_n)
                    .filter(|s| model[*s].shared & (1 << i) != 0)
                    .fold(0u16, |m, s| m | 1 << s);
                let excl = (0..slots_n)
                    .filter(|s| model[*s].excl == Some(i))
                    .fold(0u16, |m, s| m | 1 << s);
                assert_eq!(c.shared_mask(), shared, "step {step}: conn {i} shared");
                assert_eq!(c.exclusive_mask(), excl, "step {step}: conn {i} exclusive");
            }
            for (s, m) in model.iter().enumerate() {
                assert!(
                    m.excl.is_none() || m.shared == 0,
                    "step {step}: slot {s} shared and exclusive at once"
                );
            }
        }
        // A connection that goes away releases its slots: another can then
        // take every slot exclusively.
        let mut last = conns.pop().expect("connections");
        drop(conns);
        last.lock(0, SHM_LOCK_SLOTS, ShmLockOp::UnlockExclusive)
            .unwrap();
        last.lock(0, SHM_LOCK_SLOTS, ShmLockOp::LockExclusive)
            .unwrap();
    }
}

#[test]
fn exclusive_lock_manager_sections_never_overlap_across_threads() {
    const THREADS: usize = 4;
    const WRITES: u64 = 400;
    let file = LockManager::new();
    let readers_inside = Arc::new(AtomicU32::new(0));
    let writer_inside = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let reads = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let mut lock = file.connect();
            let (readers_inside, writer_inside) = (readers_inside.clone(), writer_inside.clone());
            let (commits, reads, start) = (commits.clone(), reads.clone(), start.clone());
            thread::spawn(move || {
                let mut rng = Rng(0x5eed_0100 + t as u64);
                start.wait();
                let mut written = 0;
                while written < WRITES {
                    if lock.lock(LockLevel::Shared).is_err() {
                        continue; // a writer is finishing: try again
                    }
                    // Stay inside for a while, so overlaps would be seen.
                    readers_inside.fetch_add(1, SeqCst);
                    for _ in 0..SECTION {
                        assert!(!writer_inside.load(SeqCst), "read beside a writer");
                        std::hint::spin_loop();
                    }
                    reads.fetch_add(1, SeqCst);
                    readers_inside.fetch_sub(1, SeqCst);
                    if rng.below(2) == 0 || lock.lock(LockLevel::Reserved).is_err() {
                        lock.unlock(LockLevel::None).unwrap();
                        continue;
                    }
                    // Wait for the readers to drain (PENDING keeps new ones out).
                    while lock.lock(LockLevel::Exclusive).is_err() {
                        std::hint::spin_loop();
                    }
                    assert!(!writer_inside.swap(true, SeqCst), "two writers at once");
                    for _ in 0..SECTION {
                        assert_eq!(readers_inside.load(SeqCst), 0, "write beside a reader");
                        std::hint::spin_loop();
                    }
                    commits.fetch_add(1, SeqCst);
                    writer_inside.store(false, SeqCst);
                    lock.unlock(LockLevel::None).unwrap();
                    written += 1;
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker saw two holders at once");
    }
    assert_eq!(commits.load(SeqCst), THREADS as u64 * WRITES);
    assert!(reads.load(SeqCst) >= THREADS as u64 * WRITES);
    assert_eq!(file.readers(), 0);
    assert!(!file.is_reserved());
}

/// Readers taking and dropping SHARED as fast as they can (the one-step
/// path of every read transaction) while a writer keeps committing: no
/// reader is ever inside beside the writer's EXCLUSIVE, and PENDING shuts
/// new readers out for real (the writer gets through every time although
/// the readers never pause).
#[test]
fn shared_fast_path_never_overlaps_exclusive() {
    const READERS: usize = 3;
    const COMMITS: u64 = 3_000;
    let file = LockManager::new();
    let readers_inside = Arc::new(AtomicU32::new(0));
    let writer_inside = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(READERS + 1));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let mut lock = file.connect();
            let (inside, writer_inside) = (readers_inside.clone(), writer_inside.clone());
            let (done, reads, start) = (done.clone(), reads.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                while !done.load(SeqCst) {
                    if lock.lock(LockLevel::Shared).is_err() {
                        continue;
                    }
                    inside.fetch_add(1, SeqCst);
                    assert!(!writer_inside.load(SeqCst), "read beside a writer");
                    inside.fetch_sub(1, SeqCst);
                    lock.unlock(LockLevel::None).unwrap();
                    reads.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    let mut w = file.connect();
    start.wait();
    for commit in 0..COMMITS {
        if commit % 500 == 0 {
            // On a loaded machine the readers may not have run yet: let at
            // least one more read through between every 500 commits, so
            // reads and writes really interleave (a reader locked out for
            // good fails here instead of passing unexercised).
            let before = reads.load(SeqCst);
            let mut waited = 0u64;
            while reads.load(SeqCst) == before {
                waited += 1;
                assert!(waited < 50_000_000, "no reader got in between commits");
                thread::yield_now();
            }
        }
        while w.lock(LockLevel::Shared).is_err() {
            std::hint::spin_loop();
        }
        w.lock(LockLevel::Reserved).unwrap(); // the only writer
        while w.lock(LockLevel::Exclusive).is_err() {
            assert_eq!(w.level(), LockLevel::Pending);
            std::hint::spin_loop();
        }
        writer_inside.store(true, SeqCst);
        for _ in 0..20 {
            assert_eq!(readers_inside.load(SeqCst), 0, "write beside a reader");
            std::hint::spin_loop();
        }
        writer_inside.store(false, SeqCst);
        w.unlock(LockLevel::None).unwrap();
    }
    done.store(true, SeqCst);
    for r in readers {
        r.join().expect("a reader saw the writer inside");
    }
    assert!(reads.load(SeqCst) > 0);
    assert_eq!(file.readers(), 0);
    assert!(!file.is_reserved());
}

#[test]
fn exclusive_wal_slots_never_overlap_across_threads() {
    const THREADS: usize = 4;
    const ROUNDS: u64 = 3_000;
    let group = ShmGroup::new();
    // Per slot: shared holders inside, and whether an exclusive holder is.
    let inside: Arc<Vec<(AtomicU32, AtomicBool)>> = Arc::new(
        (0..SHM_LOCK_SLOTS)
            .map(|_| (AtomicU32::new(0), AtomicBool::new(false)))
            .collect(),
    );
    let exclusive_sections = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let mut conn = group.connect();
            let (inside, sections, start) =
                (inside.clone(), exclusive_sections.clone(), start.clone());
            thread::spawn(move || {
                let mut rng = Rng(0x5eed_0200 + t as u64);
                start.wait();
                for _ in 0..ROUNDS {
                    let offset = rng.below(u64::from(SHM_LOCK_SLOTS)) as u32;
                    if rng.below(2) == 0 {
                        if conn.lock(offset, 1, ShmLockOp::LockShared).is_ok() {
                            let (readers, excl) = &inside[offset as usize];
                            readers.fetch_add(1, SeqCst);
                            for _ in 0..SECTION {
                                assert!(!excl.load(SeqCst), "shared beside exclusive");
                                std::hint::spin_loop();
                            }
                            readers.fetch_sub(1, SeqCst);
                            conn.lock(offset, 1, ShmLockOp::UnlockShared).unwrap();
                        }
                    } else {
                        let n = 1 + rng.below(u64::from(SHM_LOCK_SLOTS - offset)) as u32;
                        if conn.lock(offset, n, ShmLockOp::LockExclusive).is_ok() {
                            let range = offset as usize..(offset + n) as usize;
                            for (_, excl) in &inside[range.clone()] {
                                assert!(!excl.swap(true, SeqCst), "two exclusive holders");
                            }
                            for _ in 0..SECTION {
                                for (readers, _) in &inside[range.clone()] {
                                    assert_eq!(readers.load(SeqCst), 0, "exclusive beside shared");
                                }
                                std::hint::spin_loop();
                            }
                            sections.fetch_add(1, SeqCst);
                            for (_, excl) in &inside[range] {
                                excl.store(false, SeqCst);
                            }
                            conn.lock(offset, n, ShmLockOp::UnlockExclusive).unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("a worker saw two holders at once");
    }
    assert!(exclusive_sections.load(SeqCst) > 0);
}

/// Readers taking and dropping their read mark as fast as they can (the
/// WAL lock table's one-step shared path) while a writer keeps taking the
/// same slot exclusively, alone and in a range with others (the mark
/// resets of a checkpoint): no reader is ever inside beside the exclusive
/// holder, and readers keep getting in between.
#[test]
fn wal_read_mark_fast_path_never_overlaps_exclusive() {
    const READERS: usize = 3;
    const ROUNDS: u64 = 10_000;
    const SLOT: u32 = 4;
    let group = ShmGroup::new();
    let readers_inside = Arc::new(AtomicU32::new(0));
    let writer_inside = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(READERS + 1));
    let readers: Vec<_> = (0..READERS)
        .map(|_| {
            let mut conn = group.connect();
            let (inside, writer_inside) = (readers_inside.clone(), writer_inside.clone());
            let (done, reads, start) = (done.clone(), reads.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                while !done.load(SeqCst) {
                    if conn.lock(SLOT, 1, ShmLockOp::LockShared).is_err() {
                        continue;
                    }
                    inside.fetch_add(1, SeqCst);
                    assert!(!writer_inside.load(SeqCst), "read mark beside a writer");
                    inside.fetch_sub(1, SeqCst);
                    conn.lock(SLOT, 1, ShmLockOp::UnlockShared).unwrap();
                    reads.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    let mut w = group.connect();
    start.wait();
    let mut rng = Rng(0x5eed_0300);
    for round in 0..ROUNDS {
        if round % 1_000 == 0 {
            wait_for_a_read(&reads);
        }
        // The slot alone, or a range around it (up to every read mark).
        let (offset, n) = match rng.below(3) {
            0 => (SLOT, 1),
            1 => (3, 2),
            _ => (3, SHM_LOCK_SLOTS - 3),
        };
        let mut tries = 0u64;
        while w.lock(offset, n, ShmLockOp::LockExclusive).is_err() {
            // Readers leave the slot at once; a table that lost count
            // would keep the writer out for good.
            tries += 1;
            assert!(tries < 50_000_000, "the writer never got the read marks");
            thread::yield_now();
        }
        writer_inside.store(true, SeqCst);
        for _ in 0..20 {
            assert_eq!(readers_inside.load(SeqCst), 0, "writer beside a read mark");
            std::hint::spin_loop();
        }
        writer_inside.store(false, SeqCst);
        w.lock(offset, n, ShmLockOp::UnlockExclusive).unwrap();
    }
    done.store(true, SeqCst);
    for r in readers {
        r.join().expect("a reader saw the writer inside");
    }
    // Every lock was released: the whole table can be taken.
    w.lock(0, SHM_LOCK_SLOTS, ShmLockOp::LockExclusive).unwrap();
}

/// Waits until `reads` moves (on a loaded machine the readers may not have
/// run yet), so that locks really interleave; fails after a long wait
/// instead of passing unexercised.
fn wait_for_a_read(reads: &AtomicU64) {
    let before = reads.load(SeqCst);
    let mut waited = 0u64;
    while reads.load(SeqCst) == before {
        waited += 1;
        assert!(waited < 50_000_000, "no reader got in");
        thread::yield_now();
    }
}

/// An exclusive request over several slots is all or nothing, and so is
/// what others see of it: while one connection keeps asking for every read
/// mark exclusively and keeps failing (a reader holds the last one for the
/// whole test), readers on the other marks are never refused, since no
/// slot is ever held exclusively. A table that took the slots one by one
/// and gave them back on failure would refuse them in between.
#[test]
fn a_failing_exclusive_range_never_refuses_a_reader() {
    const READERS: usize = 2;
    const ATTEMPTS: u64 = 20_000;
    let group = ShmGroup::new();
    let mut holder = group.connect();
    holder.lock(7, 1, ShmLockOp::LockShared).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let reads = Arc::new(AtomicU64::new(0));
    let start = Arc::new(Barrier::new(READERS + 1));
    let readers: Vec<_> = (0..READERS)
        .map(|t| {
            let mut conn = group.connect();
            let (done, reads, start) = (done.clone(), reads.clone(), start.clone());
            thread::spawn(move || {
                start.wait();
                let mut slot = 3 + t as u32;
                while !done.load(SeqCst) {
                    assert_eq!(
                        outcome(conn.lock(slot, 1, ShmLockOp::LockShared)),
                        0,
                        "read mark {slot} refused while nobody held it exclusively"
                    );
                    conn.lock(slot, 1, ShmLockOp::UnlockShared).unwrap();
                    reads.fetch_add(1, SeqCst);
                    slot = 3 + (slot - 2) % 4; // 3, 4, 5, 6
                }
            })
        })
        .collect();
    let mut w = group.connect();
    start.wait();
    for attempt in 0..ATTEMPTS {
        if attempt % 1_000 == 0 {
            wait_for_a_read(&reads);
        }
        assert_eq!(
            outcome(w.lock(3, 5, ShmLockOp::LockExclusive)),
            SQLITE_BUSY,
            "slot 7 is held shared"
        );
        assert_eq!(w.exclusive_mask(), 0, "nothing kept from a failed request");
    }
    done.store(true, SeqCst);
    for r in readers {
        r.join().expect("a reader was refused");
    }
    holder.lock(7, 1, ShmLockOp::UnlockShared).unwrap();
    w.lock(3, 5, ShmLockOp::LockExclusive).unwrap();
}
