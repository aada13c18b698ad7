//! Build script of the `examples` package: builds the catalog database the
//! `embed` example carries in its binary, from `embed/catalog.sql`, into
//! `$OUT_DIR/catalog.db`.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let sql_path = manifest.join("embed").join("catalog.sql");
    println!("cargo::rerun-if-changed={}", sql_path.display());
    println!(
        "cargo::rerun-if-changed={}",
        manifest.join("embed").join("build.rs").display()
    );

    let sql = fs::read_to_string(&sql_path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", sql_path.display()));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("set by cargo")).join("catalog.db");
    match fs::remove_file(&out) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("cannot replace {}: {e}", out.display()),
    }

    // Build in memory, then write one compact, self-contained file (no
    // journal, no WAL: exactly the bytes the binary will embed).
    let conn = rusqlite::Connection::open_in_memory().expect("in-memory database");
    conn.execute_batch(&sql)
        .unwrap_or_else(|e| panic!("{}: {e}", sql_path.display()));
    let out_str = out.to_str().expect("OUT_DIR is valid UTF-8");
    conn.execute("VACUUM INTO ?1", [out_str])
        .unwrap_or_else(|e| panic!("cannot write {}: {e}", out.display()));
}
