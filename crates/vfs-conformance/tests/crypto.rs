//! The suite on vfs-crypto over memdb and over the native base, alone,
//! over cksm (the documented stack) and under it, with the `ring` page
//! cipher over memdb, Wrap over the full stacks, and the crash sweeps on
//! crypto over cksm over the native base.

use std::sync::Arc;

use vfs_cksm::Cksm;
use vfs_conformance::vfs_fault::Fault;
use vfs_conformance::{Backend, Capabilities, Location, conformance_suite, crash_suite};
use vfs_core::Native;
use vfs_crypto::{Crypto, CryptoOptions, Key, PageCipher};
use vfs_memdb::MemDb;
use vfs_observe::{StatsRecorder, Wrap};

/// Encrypted pages need the reserve (so the page size is fixed once the
/// format is on) and at least 1024-byte pages.
fn crypto_caps(durable: bool, reserve: usize) -> Capabilities {
    Capabilities {
        page_size_change: false,
        reserve: Some(reserve as u8),
        page_sizes: vec![1024, 2048, 4096, 8192, 16384, 32768, 65536],
        durable,
        ..Capabilities::full()
    }
}

/// Crypto's slice plus cksm's 8-byte trailer, in either order.
const OVER_CKSM: usize = vfs_crypto::RESERVE + 8;

fn native() -> Native {
    Native::new().expect("native VFS")
}

conformance_suite!(crypto_memdb, |case: &str| {
    Backend::register(
        &format!("crypto-memdb-{case}"),
        Crypto::new(MemDb::new(), Key::generate()),
        crypto_caps(false, vfs_crypto::RESERVE),
    )
    .at(Location::Prefix("/conf".into()))
});

conformance_suite!(crypto_ring_memdb, |case: &str| {
    Backend::register(
        &format!("crypto-ring-memdb-{case}"),
        Crypto::with_options(
            MemDb::new(),
            CryptoOptions {
                key: Some(Key::generate()),
                cipher: PageCipher::Ring,
                ..CryptoOptions::default()
            },
        ),
        crypto_caps(false, vfs_crypto::RESERVE),
    )
    .at(Location::Prefix("/conf".into()))
});

conformance_suite!(crypto_native, |case: &str| {
    Backend::register(
        &format!("crypto-native-{case}"),
        Crypto::new(native(), Key::generate()),
        crypto_caps(true, vfs_crypto::RESERVE),
    )
});

conformance_suite!(crypto_cksm_memdb, |case: &str| {
    Backend::register(
        &format!("crypto-cksm-memdb-{case}"),
        Crypto::new(Cksm::new(MemDb::new()), Key::generate()),
        crypto_caps(false, OVER_CKSM),
    )
    .at(Location::Prefix("/conf".into()))
});

conformance_suite!(crypto_cksm_native, |case: &str| {
    Backend::register(
        &format!("crypto-cksm-native-{case}"),
        Crypto::new(Cksm::new(native()), Key::generate()),
        crypto_caps(true, OVER_CKSM),
    )
});

// The other order: checksums over the plaintext, stored encrypted.
conformance_suite!(cksm_crypto_memdb, |case: &str| {
    Backend::register(
        &format!("cksm-crypto-memdb-{case}"),
        Cksm::new(Crypto::new(MemDb::new(), Key::generate())),
        crypto_caps(false, OVER_CKSM),
    )
    .at(Location::Prefix("/conf".into()))
});

conformance_suite!(cksm_crypto_native, |case: &str| {
    Backend::register(
        &format!("cksm-crypto-native-{case}"),
        Cksm::new(Crypto::new(native(), Key::generate())),
        crypto_caps(true, OVER_CKSM),
    )
});

conformance_suite!(wrap_crypto_cksm_memdb, |case: &str| {
    Backend::register(
        &format!("wrap-crypto-cksm-memdb-{case}"),
        Wrap::new(
            Crypto::new(Cksm::new(MemDb::new()), Key::generate()),
            Arc::new(StatsRecorder::new()),
        ),
        crypto_caps(false, OVER_CKSM),
    )
    .at(Location::Prefix("/conf".into()))
});

crash_suite!(
    crypto_cksm_native_crash,
    "crypto(cksm(native))",
    || {
        let fault = Fault::new(native());
        let ctl = fault.controller();
        (Crypto::new(Cksm::new(fault), Key::generate()), ctl)
    },
    Location::RamTempDir
);
