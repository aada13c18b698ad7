//! Criterion micro-benchmarks of the checksums (`cargo bench -p vfs-cksm`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn checksums(c: &mut Criterion) {
    let page: Vec<u8> = (0..4096u32).map(|i| (i * 31 % 251) as u8).collect();
    let mut g = c.benchmark_group("4 KiB page");
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("cksumvfs checksum", |b| {
        b.iter(|| vfs_cksm::cksumvfs_checksum(black_box(&page[..4088])))
    });
    g.bench_function("CRC-32 trailer", |b| {
        b.iter(|| vfs_cksm::crc_trailer(black_box(&page[..4084]), 7))
    });
    g.bench_function("verify a cksumvfs page", |b| {
        let mut p = page.clone();
        let sum = vfs_cksm::cksumvfs_checksum(&p[..4088]);
        p[4088..].copy_from_slice(&sum);
        b.iter(|| vfs_cksm::verify_cksumvfs_page(black_box(&p)))
    });
    g.finish();
}

criterion_group!(benches, checksums);
criterion_main!(benches);
