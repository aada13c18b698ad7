//! Criterion micro-benchmarks of one 4 KiB database page written (encrypted)
//! and read (decrypted and authenticated) through the layers, beside the
//! same page through memdb alone and through cksm(memdb), and AES-256-GCM
//! by itself as the floor (AWS-LC's, the default, and RustCrypto's).
//! `cargo bench -p vfs-crypto --bench page`; add `--features ring` for the
//! `ring` page cipher.

use std::hint::black_box;
use std::sync::Arc;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use rusqlite::Connection;
use vfs_core::{File, FileKind, OpenAccess, OpenName, OpenOptions, Vfs};

const PAGE: usize = 4096;

/// Registers `vfs` (each over its own memdb), creates `/bench.db` through
/// SQLite so page 1 carries the layer's format, then opens the file
/// directly through `vfs` and measures reading and rewriting page 2.
fn page_through<V: Vfs>(g: &mut BenchmarkGroup<'_, WallTime>, label: &str, vfs: V) {
    let vfs = Arc::new(vfs);
    let name = format!("page-bench-{label}");
    let _reg = vfs_core::register(&name, vfs.clone(), false).unwrap();
    let conn = Connection::open(format!("file:/bench.db?vfs={name}")).unwrap();
    conn.execute_batch(
        "PRAGMA page_size=4096;
         CREATE TABLE t(x);
         WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 16)
         INSERT INTO t SELECT randomblob(3000) FROM c;",
    )
    .unwrap();
    let opts = OpenOptions::new(FileKind::MainDb, OpenAccess::ReadWrite);
    let mut file = vfs
        .open(&OpenName::new("/bench.db", FileKind::MainDb), opts)
        .unwrap();
    // Page 1 first, as SQLite does: crypto trusts the database's keys only
    // once its page 1 has authenticated under them.
    let mut page = vec![0u8; PAGE];
    assert_eq!(file.read_at(&mut page, 0).unwrap(), PAGE);
    // Page 2's plaintext, as SQLite wrote it (the layer's slice zeroed).
    assert_eq!(file.read_at(&mut page, PAGE as u64).unwrap(), PAGE);
    let mut buf = vec![0u8; PAGE];
    g.bench_function(format!("read {label}"), |b| {
        b.iter(|| file.read_at(black_box(&mut buf), PAGE as u64).unwrap())
    });
    g.bench_function(format!("write {label}"), |b| {
        b.iter(|| file.write_at(black_box(&page), PAGE as u64).unwrap())
    });
    assert_eq!(file.read_at(&mut buf, PAGE as u64).unwrap(), PAGE);
    // The usable bytes must survive; the reserved tail may differ (over
    // crypto(cksm), the checksum of each new ciphertext shows through).
    let usable = PAGE - 64;
    assert!(
        buf[..usable] == page[..usable],
        "{label}: page 2 changed under the benchmark"
    );
    drop(file);
    drop(conn);
}

fn pages(c: &mut Criterion) {
    let key = vfs_crypto::Key::from_bytes([42; 32]);
    let mut g = c.benchmark_group("4 KiB page");
    g.throughput(Throughput::Bytes(PAGE as u64));
    page_through(&mut g, "memdb", vfs_memdb::MemDb::new());
    page_through(
        &mut g,
        "cksm(memdb)",
        vfs_cksm::Cksm::new(vfs_memdb::MemDb::new()),
    );
    page_through(
        &mut g,
        "crypto(memdb)",
        vfs_crypto::Crypto::new(vfs_memdb::MemDb::new(), key.clone()),
    );
    page_through(
        &mut g,
        "crypto-rustcrypto(memdb)",
        vfs_crypto::Crypto::with_options(
            vfs_memdb::MemDb::new(),
            vfs_crypto::CryptoOptions {
                key: Some(key.clone()),
                cipher: vfs_crypto::PageCipher::RustCrypto,
                ..vfs_crypto::CryptoOptions::default()
            },
        ),
    );
    #[cfg(feature = "ring")]
    page_through(
        &mut g,
        "crypto-ring(memdb)",
        vfs_crypto::Crypto::with_options(
            vfs_memdb::MemDb::new(),
            vfs_crypto::CryptoOptions {
                key: Some(key.clone()),
                cipher: vfs_crypto::PageCipher::Ring,
                ..vfs_crypto::CryptoOptions::default()
            },
        ),
    );
    page_through(
        &mut g,
        "crypto(cksm(memdb))",
        vfs_crypto::Crypto::new(vfs_cksm::Cksm::new(vfs_memdb::MemDb::new()), key),
    );
    // The floors: AES-256-GCM over the page body alone, no layer.
    let mut body = vec![0x5au8; PAGE - vfs_crypto::SLICE];
    let aws = aws_lc_rs::aead::LessSafeKey::new(
        aws_lc_rs::aead::UnboundKey::new(&aws_lc_rs::aead::AES_256_GCM, &[7u8; 32]).unwrap(),
    );
    g.bench_function("AES-256-GCM seal alone, AWS-LC", |b| {
        b.iter(|| {
            aws.seal_in_place_separate_tag(
                aws_lc_rs::aead::Nonce::assume_unique_for_key([1u8; 12]),
                aws_lc_rs::aead::Aad::from(b"ad"),
                black_box(&mut body[..]),
            )
            .unwrap()
        })
    });
    let gcm = Aes256Gcm::new(&[7u8; 32].into());
    let nonce = Nonce::from([1u8; 12]);
    g.bench_function("AES-256-GCM seal alone, RustCrypto", |b| {
        b.iter(|| {
            gcm.encrypt_inout_detached(&nonce, b"ad", black_box(&mut body[..]).into())
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, pages);
criterion_main!(benches);
