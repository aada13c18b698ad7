//! Making a VFS SQLite's default changes what every plain open in the
//! process uses, so this test has its own binary: no other test can open a
//! plain path while the default is switched.

mod common;

use common::*;
use rusqlite::{Connection, OpenFlags};

#[test]
fn make_default_routes_plain_opens_to_the_vfs() {
    let name = unique_name("default");
    let vfs = TestVfs::new(false);
    let reg = vfs_core::register(&name, vfs.clone(), true).unwrap();
    let conn = Connection::open_with_flags(
        "dflt.db",
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
    )
    .unwrap();
    conn.execute_batch("CREATE TABLE t(x)").unwrap();
    drop(conn);
    reg.unregister().unwrap();
    assert!(vfs.file_names().contains(&"dflt.db".to_owned()));
    assert!(!std::path::Path::new("dflt.db").exists(), "nothing on disk");
}
