//! Wrap (with a stats recorder) over every stack the other suites run bare
//! (native, memdb and crypto(cksm(memdb)) have theirs in their own files):
//! observing a stack must not change what SQLite sees (the exact counts
//! a recorder sees are proven in vfs-core's tests/wrap.rs).

use std::sync::Arc;

use vfs_cksm::Cksm;
use vfs_conformance::{Backend, Capabilities, Location, conformance_suite};
use vfs_core::Native;
use vfs_crypto::{Crypto, Key};
use vfs_embed::{Embed, EmbedSlot, FileSet, Source};
use vfs_memdb::MemDb;
use vfs_mvcc::Mvcc;
use vfs_observe::{StatsRecorder, Wrap};

fn native() -> Native {
    Native::new().expect("native VFS")
}

/// Registers `Wrap(vfs)` with a fresh stats recorder, kept alive with the
/// registration.
fn wrapped<V: vfs_core::Vfs>(name: String, vfs: V, caps: Capabilities) -> Backend {
    let stats = Arc::new(StatsRecorder::new());
    Backend::register(&name, Wrap::new(vfs, stats.clone()), caps).keep(stats)
}

/// cksm follows `VACUUM` to another page size.
fn checksummed(durable: bool) -> Capabilities {
    Capabilities {
        durable,
        ..Capabilities::full()
    }
}

/// Encrypting stacks keep their page size once the format is on.
fn fixed_page(durable: bool) -> Capabilities {
    Capabilities {
        page_size_change: false,
        durable,
        ..Capabilities::full()
    }
}

fn crypto_caps(durable: bool, reserve: usize) -> Capabilities {
    Capabilities {
        reserve: Some(reserve as u8),
        page_sizes: vec![1024, 2048, 4096, 8192, 16384, 32768, 65536],
        ..fixed_page(durable)
    }
}

conformance_suite!(wrap_mvcc, |case: &str| {
    wrapped(
        format!("wrap-mvcc-{case}"),
        Mvcc::new(),
        Capabilities {
            wal: false,
            durable: false,
            snapshot_reads: true,
            ..Capabilities::full()
        },
    )
    .at(Location::Prefix("/conf".into()))
});

conformance_suite!(wrap_cksm_memdb, |case: &str| {
    wrapped(
        format!("wrap-cksm-memdb-{case}"),
        Cksm::new(MemDb::new()),
        checksummed(false),
    )
    .at(Location::Prefix("/conf".into()))
});

conformance_suite!(wrap_cksm_native, |case: &str| {
    wrapped(
        format!("wrap-cksm-native-{case}"),
        Cksm::new(native()),
        checksummed(true),
    )
});

conformance_suite!(wrap_crypto_memdb, |case: &str| {
    wrapped(
        format!("wrap-crypto-memdb-{case}"),
        Crypto::new(MemDb::new(), Key::generate()),
        crypto_caps(false, vfs_crypto::RESERVE),
    )
    .at(Location::Prefix("/conf".into()))
});

conformance_suite!(wrap_crypto_cksm_native, |case: &str| {
    wrapped(
        format!("wrap-crypto-cksm-native-{case}"),
        Crypto::new(Cksm::new(native()), Key::generate()),
        crypto_caps(true, vfs_crypto::RESERVE + 8),
    )
});

conformance_suite!(wrap_embed, |case: &str| {
    let slot = EmbedSlot::new();
    let installer = slot.clone();
    wrapped(
        format!("wrap-embed-{case}"),
        slot,
        Capabilities::read_only(),
    )
    .at(Location::Prefix("/conf".into()))
    .installer(Arc::new(move |path: &str, bytes: &[u8]| {
        let set = FileSet::new().with(path, Source::from_bytes(bytes.to_vec()));
        installer.install(Embed::new(set));
        Ok(())
    }))
});
