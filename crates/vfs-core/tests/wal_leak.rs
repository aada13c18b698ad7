//! No leak: once every WAL connection of the process has closed, no shared
//! memory group is active. (Own test binary: the counter is process-wide.)

mod common;

use common::*;
use rusqlite::Connection;

#[test]
fn groups_are_released_when_the_last_connection_closes() {
    assert_eq!(vfs_core::shm::active_groups(), 0);
    let name = unique_name("leak");
    let vfs = TestVfs::new(true);
    let reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let conns: Vec<Connection> = (0..3)
        .map(|i| Connection::open(format!("file:db{}.db?vfs={name}", i % 2)).unwrap())
        .collect();
    for c in &conns {
        let mode: String = c
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        c.execute_batch("CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES (1);")
            .unwrap();
    }
    assert_eq!(
        vfs_core::shm::active_groups(),
        2,
        "two databases, two groups"
    );
    drop(conns);
    assert_eq!(vfs_core::shm::active_groups(), 0);
    assert_eq!(vfs.shm_state("db0.db"), Some((0, 0)));
    reg.unregister().unwrap();
}
