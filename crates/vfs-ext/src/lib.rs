//! # vfs-ext
//!
//! A loadable SQLite extension: `.load ./libvfs_ext` in the `sqlite3` shell,
//! `conn.load_extension("./libvfs_ext")` in Python, or
//! `sqlite3_load_extension` in any SQLite host registers the workspace's
//! backends and stacks with the host's SQLite, for the life of the process.
//! Open a database on one with `file:app.db?vfs=<name>`.
//!
//! | name     | what |
//! |----------|------|
//! | `native` | the platform VFS (`unix`) through vfs-core: real files |
//! | `mem`    | vfs-memdb: in memory; `/name` shared by the process, other names private |
//! | `mvcc`   | vfs-mvcc: in memory, readers on snapshots; `/name` shared |
//! | `cksm`   | vfs-cksm over real files: page checksums, SQLite's cksumvfs format |
//! | `cksm-mem` | vfs-cksm over memory |
//! | `cksm-crc32` | vfs-cksm over real files, new databases in the CRC-32 format |
//!
//! Set `VFSEXT_DEFAULT=<name>` in the host's environment before loading to
//! make that VFS the host's default (off by default).
//!
//! The entry point is `sqlite3_vfsext_init` (the name SQLite derives from
//! `libvfs_ext.so`), with SQLite's standard signature
//! `int sqlite3_vfsext_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi)`.
//! The host's SQLite must be 3.32.0 or newer; an older one is refused at
//! load with a message naming both versions. See `docs/extension.md`.
//!
//! The crate is built outside the workspace (its `libsqlite3-sys` runs in
//! the `loadable_extension` mode, which would otherwise be unified into
//! every crate): `cargo build --release --manifest-path crates/vfs-ext/Cargo.toml`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod stacks;

pub use stacks::DEFAULT_ENV;

vfs_core::sqlite_extension!(sqlite3_vfsext_init, register_all);

/// Registers every VFS of the extension with the host's SQLite, making the
/// one named by `VFSEXT_DEFAULT` (if set and not empty) the default. Runs
/// once per process (the entry point remembers the outcome).
pub fn register_all() -> vfs_core::Result<()> {
    let mut registrar = stacks::Registrar::new(default_from(std::env::var_os(DEFAULT_ENV)));
    stacks::register_all(&mut registrar)?;
    registrar.finish().map(drop)
}

/// The default VFS requested by the environment value `value`.
fn default_from(value: Option<std::ffi::OsString>) -> Option<String> {
    let value = value?.to_string_lossy().trim().to_owned();
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_off_unless_named() {
        assert_eq!(default_from(None), None);
        assert_eq!(default_from(Some("".into())), None);
        assert_eq!(default_from(Some("  ".into())), None);
        assert_eq!(default_from(Some(" mem ".into())), Some("mem".to_owned()));
    }

    /// The entries of `sqlite3_api_routines` each host version has, counted
    /// from the declaration in SQLite's `sqlite3ext.h` (SQLite only appends).
    #[test]
    fn host_tables_have_the_entries_of_their_version() {
        for (version, entries) in [
            (3_031_000, 249),
            (3_036_000, 253),
            (3_036_001, 255),
            (3_040_001, 266),
            (3_044_000, 270),
            (3_054_001, 279),
            (3_099_000, 279),
        ] {
            assert_eq!(
                vfs_core::extension::__host_table_len(version),
                entries * std::mem::size_of::<usize>(),
                "SQLite {version}"
            );
        }
    }
}
