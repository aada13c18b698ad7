//! Arbitrary bytes read as an encrypted database (vfs-crypto over a
//! read-only base): every page fails authentication or decodes, the answer
//! is an SQLite error code, never a panic or garbage accepted as data.
#![no_main]
#![forbid(unsafe_code)]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vfs_crypto::{Crypto, Key};

fn uri() -> &'static str {
    static URI: OnceLock<String> = OnceLock::new();
    URI.get_or_init(|| {
        format!(
            "file:main.db?vfs=fuzz-crypto&mode=ro&immutable=1&hexkey={}",
            Key::from_bytes([7; 32]).to_hex().as_str()
        )
    })
}

fuzz_target!(|data: &[u8]| {
    let base = vfs_fuzz::registered("fuzz-crypto", Crypto::keyless);
    base.serve(data);
    if let Ok(conn) = rusqlite::Connection::open(uri()) {
        let _ = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        });
        let _ = conn.query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0));
    }
});
