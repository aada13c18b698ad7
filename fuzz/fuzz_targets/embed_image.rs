//! Arbitrary bytes served as a read-only database by vfs-embed and queried:
//! SQLite errors are fine, a panic or a crash is not.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let base = vfs_fuzz::registered("fuzz-embed", |b| b);
    base.serve(data);
    if let Ok(conn) = rusqlite::Connection::open("file:main.db?vfs=fuzz-embed&mode=ro&immutable=1")
    {
        for sql in [
            "SELECT count(*) FROM sqlite_schema",
            "PRAGMA quick_check",
            "SELECT * FROM sqlite_schema",
        ] {
            let _ = conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0));
        }
    }
});
