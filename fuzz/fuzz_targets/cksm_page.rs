//! Checksum verification of arbitrary page images in both formats: an
//! answer, never a panic; a page whose trailer was just computed verifies.
#![no_main]
#![forbid(unsafe_code)]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let pgno = data.first().map_or(1, |&b| u32::from(b) + 1);
    let _ = vfs_cksm::verify_cksumvfs_page(data);
    let _ = vfs_cksm::verify_crc_page(data, pgno);
    if data.len() >= 512 && data.len().is_power_of_two() && data.len() <= 65536 {
        let mut page = data.to_vec();
        let n = page.len();
        let sum = vfs_cksm::cksumvfs_checksum(&page[..n - 8]);
        page[n - 8..].copy_from_slice(&sum);
        assert_eq!(vfs_cksm::verify_cksumvfs_page(&page), Some(true));
    }
});
