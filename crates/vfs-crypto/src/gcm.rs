//! AES-256-GCM for page images, with interchangeable implementations
//! producing the same bytes: AWS-LC through `aws-lc-rs` (crate feature
//! `aws-lc`, on by default, and then the default cipher: assembly using
//! AES-NI/VAES and carry-less multiplication, its contexts cleansed when
//! freed), the RustCrypto `aes-gcm` crate (pure Rust, key schedules
//! zeroized on drop; the default without `aws-lc`) and, with the crate
//! feature `ring`, the `ring` crate (assembly, but its key schedules are not
//! zeroized when dropped).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};

/// Which AES-256-GCM implementation encrypts pages
/// ([`CryptoOptions::cipher`](crate::CryptoOptions::cipher)). All write
/// the same format: a database written with one reads with the others.
///
/// The default is [`PageCipher::AwsLc`] when the crate feature `aws-lc` is
/// on (it is by default), [`PageCipher::RustCrypto`] otherwise; both keep
/// the promise that key schedules are zeroized when a handle drops them.
///
/// ```
/// use vfs_crypto::PageCipher;
/// # #[cfg(feature = "aws-lc")]
/// assert_eq!(PageCipher::default(), PageCipher::AwsLc);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PageCipher {
    /// AWS-LC's AES-256-GCM through `aws-lc-rs` (crate feature `aws-lc`):
    /// assembly with AES-NI/VAES and carry-less multiplication, about four
    /// times the throughput of `aes-gcm` on a 4 KiB page on x86-64. Its
    /// key schedule and GHASH table live in one C allocation that AWS-LC's
    /// `OPENSSL_free` overwrites (`OPENSSL_cleanse`) before freeing it.
    #[cfg(feature = "aws-lc")]
    AwsLc,
    /// RustCrypto's `aes-gcm` (pure Rust; every key schedule zeroized when
    /// dropped).
    RustCrypto,
    /// `ring`'s AES-256-GCM (crate feature `ring`): about 2.7× the
    /// throughput of `aes-gcm` on x86-64 with AES-NI, VAES and
    /// carry-less multiplication; the per-session AES key schedules it
    /// keeps are not zeroized when dropped (the master and derived key
    /// bytes still are).
    #[cfg(feature = "ring")]
    Ring,
}

impl Default for PageCipher {
    #[cfg(feature = "aws-lc")]
    fn default() -> PageCipher {
        PageCipher::AwsLc
    }

    #[cfg(not(feature = "aws-lc"))]
    fn default() -> PageCipher {
        PageCipher::RustCrypto
    }
}

/// AES-256-GCM under one derived key.
pub(crate) enum PageGcm {
    #[cfg(feature = "aws-lc")]
    AwsLc(aws_lc_rs::aead::LessSafeKey),
    RustCrypto(Box<Aes256Gcm>),
    #[cfg(feature = "ring")]
    Ring(Box<ring::aead::LessSafeKey>),
}

impl PageGcm {
    pub(crate) fn new(cipher: PageCipher, key: &[u8; 32]) -> PageGcm {
        match cipher {
            #[cfg(feature = "aws-lc")]
            PageCipher::AwsLc => {
                use aws_lc_rs::aead::{AES_256_GCM, LessSafeKey, UnboundKey};
                match UnboundKey::new(&AES_256_GCM, key) {
                    Ok(k) => PageGcm::AwsLc(LessSafeKey::new(k)),
                    // A 32-byte key is always accepted (only an allocation
                    // failure inside AWS-LC could refuse it); stay correct
                    // regardless.
                    Err(_) => PageGcm::RustCrypto(Box::new(Aes256Gcm::new(key.into()))),
                }
            }
            PageCipher::RustCrypto => PageGcm::RustCrypto(Box::new(Aes256Gcm::new(key.into()))),
            #[cfg(feature = "ring")]
            PageCipher::Ring => match ring::aead::UnboundKey::new(&ring::aead::AES_256_GCM, key) {
                Ok(k) => PageGcm::Ring(Box::new(ring::aead::LessSafeKey::new(k))),
                // A 32-byte key is always accepted; stay correct regardless.
                Err(_) => PageGcm::RustCrypto(Box::new(Aes256Gcm::new(key.into()))),
            },
        }
    }

    /// Encrypts `data` in place under `nonce` and `ad`; returns the tag.
    pub(crate) fn seal(&self, nonce: &[u8; 12], ad: &[u8], data: &mut [u8]) -> Option<[u8; 16]> {
        match self {
            #[cfg(feature = "aws-lc")]
            PageGcm::AwsLc(key) => {
                let tag = key
                    .seal_in_place_separate_tag(
                        aws_lc_rs::aead::Nonce::assume_unique_for_key(*nonce),
                        aws_lc_rs::aead::Aad::from(ad),
                        data,
                    )
                    .ok()?;
                tag.as_ref().try_into().ok()
            }
            PageGcm::RustCrypto(gcm) => {
                let tag = gcm
                    .encrypt_inout_detached(&Nonce::from(*nonce), ad, data.into())
                    .ok()?;
                Some(tag.into())
            }
            #[cfg(feature = "ring")]
            PageGcm::Ring(key) => {
                let tag = key
                    .seal_in_place_separate_tag(
                        ring::aead::Nonce::assume_unique_for_key(*nonce),
                        ring::aead::Aad::from(ad),
                        data,
                    )
                    .ok()?;
                tag.as_ref().try_into().ok()
            }
        }
    }

    /// Decrypts `data` in place if it authenticates under `nonce`, `ad` and
    /// `tag`; `false` (with `data` unspecified) if it does not.
    pub(crate) fn open(
        &self,
        nonce: &[u8; 12],
        ad: &[u8],
        data: &mut [u8],
        tag: &[u8; 16],
    ) -> bool {
        match self {
            #[cfg(feature = "aws-lc")]
            PageGcm::AwsLc(key) => key
                .open_in_place_separate_tag(
                    aws_lc_rs::aead::Nonce::assume_unique_for_key(*nonce),
                    aws_lc_rs::aead::Aad::from(ad),
                    tag,
                    data,
                )
                .is_ok(),
            PageGcm::RustCrypto(gcm) => gcm
                .decrypt_inout_detached(&Nonce::from(*nonce), ad, data.into(), &Tag::from(*tag))
                .is_ok(),
            #[cfg(feature = "ring")]
            PageGcm::Ring(key) => key
                .open_in_place_separate_tag(
                    ring::aead::Nonce::assume_unique_for_key(*nonce),
                    ring::aead::Aad::from(ad),
                    ring::aead::Tag::from(*tag),
                    data,
                    0..,
                )
                .is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every implementation this build has besides RustCrypto's.
    const OTHERS: &[PageCipher] = &[
        #[cfg(feature = "aws-lc")]
        PageCipher::AwsLc,
        #[cfg(feature = "ring")]
        PageCipher::Ring,
    ];

    #[test]
    fn every_implementation_writes_and_reads_the_same_bytes() {
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        };
        for &other in OTHERS {
            for len in [0, 1, 15, 16, 17, 1000, 4048, 65488] {
                let key: [u8; 32] = std::array::from_fn(|_| next());
                let nonce: [u8; 12] = std::array::from_fn(|_| next());
                let ad: Vec<u8> = (0..41).map(|_| next()).collect();
                let plain: Vec<u8> = (0..len).map(|_| next()).collect();
                let (rust, them) = (
                    PageGcm::new(PageCipher::RustCrypto, &key),
                    PageGcm::new(other, &key),
                );
                assert!(
                    !matches!(them, PageGcm::RustCrypto(_)),
                    "{other:?} fell back to RustCrypto"
                );
                let (mut a, mut b) = (plain.clone(), plain.clone());
                let ta = rust.seal(&nonce, &ad, &mut a).unwrap();
                let tb = them.seal(&nonce, &ad, &mut b).unwrap();
                assert_eq!((&a, ta), (&b, tb), "{other:?}, {len} bytes");
                // Each opens the other's output; a flipped bit fails in both.
                assert!(them.open(&nonce, &ad, &mut a, &ta));
                assert!(rust.open(&nonce, &ad, &mut b, &tb));
                assert_eq!((&a, &b), (&plain, &plain));
                let mut tampered = tb;
                tampered[0] ^= 1;
                let (mut c, mut d) = (plain.clone(), plain.clone());
                rust.seal(&nonce, &ad, &mut c).unwrap();
                them.seal(&nonce, &ad, &mut d).unwrap();
                assert!(!rust.open(&nonce, &ad, &mut c, &tampered));
                assert!(!them.open(&nonce, &ad, &mut d, &tampered));
            }
        }
    }
}
