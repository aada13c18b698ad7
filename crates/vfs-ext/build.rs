//! Marks the shared library "never unload" (`-z nodelete`).
//!
//! SQLite unloads an extension whose entry point fails. By then the
//! extension may have handed the host pointers into its code (a connection
//! hook installed by a backend, a VFS registered before the failure): with
//! the flag, `dlclose` leaves the library mapped and those pointers stay
//! valid. A successful load stays loaded anyway (the entry point answers
//! `SQLITE_OK_LOAD_PERMANENTLY`).
fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo::rustc-cdylib-link-arg=-Wl,-z,nodelete");
    }
}
