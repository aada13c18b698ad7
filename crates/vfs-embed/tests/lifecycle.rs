//! Registration under fresh names; the handle owns the lifetime.

mod common;

use common::*;
use rusqlite::Connection;
use rusqlite::ffi::SQLITE_BUSY;
use vfs_embed::Embed;

#[test]
fn each_registration_gets_a_fresh_registered_name_and_a_uri() {
    let a = Embed::register(image("CREATE TABLE x(y)")).unwrap();
    let b = Embed::register(image("CREATE TABLE x(y)")).unwrap();
    assert_ne!(a.name(), b.name());
    assert!(a.name().starts_with("vfs-embed-"));
    assert!(vfs_core::find(a.name()) && vfs_core::find(b.name()));
    assert_eq!(
        a.uri("main.db"),
        format!("file:main.db?vfs={}&mode=ro&immutable=1", a.name())
    );
    assert_eq!(a.uri("/main.db"), a.uri("main.db"));
    assert_eq!(a.open_files(), 0);
}

#[test]
fn close_refuses_while_a_database_is_open_then_unregisters() {
    let handle = Embed::register(image(&numbers_sql(50))).unwrap();
    let name = handle.name().to_owned();
    let conn = Connection::open(handle.uri("main.db")).unwrap();
    assert_eq!(handle.open_files(), 1);
    let (handle, err) = handle.close().unwrap_err();
    assert_eq!(err.code(), Some(SQLITE_BUSY));
    assert!(err.message().contains("open file"), "{}", err.message());
    // Still registered, still serving.
    assert!(vfs_core::find(&name));
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 50);
    drop(conn);
    assert_eq!(handle.open_files(), 0);
    handle.close().map_err(|(_, e)| e).unwrap();
    assert!(!vfs_core::find(&name));
    // A URI naming the closed VFS no longer opens.
    assert!(Connection::open(format!("file:main.db?vfs={name}")).is_err());
}

#[test]
fn drop_unregisters_at_once_when_nothing_is_open() {
    let handle = Embed::register(image("CREATE TABLE x(y)")).unwrap();
    let name = handle.name().to_owned();
    let conn = Connection::open(handle.uri("main.db")).unwrap();
    drop(conn);
    drop(handle);
    assert!(!vfs_core::find(&name));
}

#[test]
fn drop_while_open_keeps_serving_and_unregisters_later() {
    let handle = Embed::register(image(&numbers_sql(20))).unwrap();
    let name = handle.name().to_owned();
    let conn = Connection::open(handle.uri("main.db")).unwrap();
    drop(handle);
    // The open connection keeps working: the VFS is still registered.
    assert!(vfs_core::find(&name));
    let n: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 20);
    drop(conn);
    // The next registration (or close or drop) of any embedded VFS retries
    // the unregistration, which now succeeds.
    let other = Embed::register(image("CREATE TABLE x(y)")).unwrap();
    assert!(!vfs_core::find(&name));
    assert!(vfs_core::find(other.name()));
}

#[test]
fn a_slot_serves_what_is_installed_and_replacing_it_spares_open_connections() {
    use rusqlite::ffi::SQLITE_CANTOPEN;
    use vfs_embed::{EmbedSlot, FileSet};

    let slot = EmbedSlot::new();
    let _reg = vfs_core::register("embed-slot-test", slot.clone(), false).unwrap();
    let uri = "file:main.db?vfs=embed-slot-test&mode=ro&immutable=1";
    let sum = |c: &Connection| -> i64 {
        c.query_row("SELECT sum(n) FROM t", [], |r| r.get(0))
            .unwrap()
    };

    // Empty: CANTOPEN, with a message saying nothing is installed.
    assert_eq!(err_code(Connection::open(uri)), SQLITE_CANTOPEN);
    assert!(
        vfs_core::last_error().is_some_and(|e| e.message.contains("no embedded images")),
        "{:?}",
        vfs_core::last_error()
    );

    assert!(
        slot.install(Embed::new(
            FileSet::new().with("main.db", image(&numbers_sql(10)))
        ))
        .is_none()
    );
    let first = Connection::open(uri).unwrap();
    assert_eq!(sum(&first), numbers_sum(10));

    let previous = slot.install(Embed::new(
        FileSet::new().with("main.db", image(&numbers_sql(20))),
    ));
    assert!(previous.is_some());
    let second = Connection::open(uri).unwrap();
    assert_eq!(sum(&second), numbers_sum(20));
    // The first connection still reads the image it opened.
    assert_eq!(sum(&first), numbers_sum(10));
    assert_eq!(integrity(&first), "ok");

    // Cleared: new opens fail again; open connections keep working.
    assert!(slot.clear().is_some());
    assert!(slot.current().is_none());
    assert_eq!(err_code(Connection::open(uri)), SQLITE_CANTOPEN);
    assert_eq!(sum(&second), numbers_sum(20));
}
