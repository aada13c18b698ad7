//! The keys of one database for one master key: HKDF-SHA256 subkeys, the
//! XAES-256-GCM key derivation, checksum masks and the key check value.

use aes::Aes256;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::format::{Binding, Class, Identity, KCV_LEN, V1};

/// The keys of one database for one master key.
pub(crate) struct DbKeys {
    /// The identity these keys were derived for.
    pub(crate) ident: Identity,
    /// The XAES-256-GCM key's block cipher (key schedule done once).
    xaes: Aes256,
    /// XAES-256-GCM's `K1` (the CMAC subkey of the key).
    k1: Zeroizing<[u8; 16]>,
    /// Checksum masks.
    mask: Aes256,
    /// The key check value this key gives (equal to `ident.kcv` when the
    /// key is the database's).
    pub(crate) kcv: [u8; KCV_LEN],
}

impl DbKeys {
    /// Derives the page key, the mask key and the check value from the
    /// master key with HKDF-SHA256 (salt: the database's salt). Both format
    /// versions use the same labels.
    pub(crate) fn derive(master: &[u8; 32], ident: Identity) -> DbKeys {
        let hk = Hkdf::<Sha256>::new(Some(&ident.salt), master);
        let mut page = Zeroizing::new([0u8; 32]);
        let mut mask = Zeroizing::new([0u8; 32]);
        let mut kcv = [0u8; KCV_LEN];
        // Cannot fail for outputs of at most 255 * 32 bytes.
        let expand = |info: &[u8], out: &mut [u8]| {
            let _ = hk.expand(info, out);
        };
        expand(b"vfs-crypto/v1/page", &mut *page);
        expand(b"vfs-crypto/v1/mask", &mut *mask);
        expand(b"vfs-crypto/v1/check", &mut kcv);
        let xaes = Aes256::new((&*page).into());
        // XAES-256-GCM, step 1: L = AES-256_K(0^128); K1 = L << 1, xored
        // with 0x87 when L's top bit is set.
        let mut block = [0u8; 16].into();
        xaes.encrypt_block(&mut block);
        let mut l: Zeroizing<[u8; 16]> = Zeroizing::new(block.into());
        block.as_mut_slice().zeroize();
        let mut k1 = Zeroizing::new([0u8; 16]);
        for i in 0..16 {
            k1[i] = l[i] << 1 | l.get(i + 1).map_or(0, |n| n >> 7);
        }
        k1[15] ^= (l[0] >> 7) * 0x87;
        l.zeroize();
        DbKeys {
            xaes,
            k1,
            mask: Aes256::new((&*mask).into()),
            ident,
            kcv,
        }
    }

    /// The AES-256-GCM key XAES-256-GCM uses for nonces starting with `n1`
    /// (their first 12 bytes): `Kx = AES_K(M1 ⊕ K1) ‖ AES_K(M2 ⊕ K1)` with
    /// `M1 = 00 01 'X' 00 ‖ n1`, `M2 = 00 02 'X' 00 ‖ n1` (C2SP's
    /// XAES-256-GCM, steps 3 to 5). The last 12 bytes of the nonce are the
    /// GCM nonce under `Kx`. Every intermediate block is zeroized.
    pub(crate) fn subkey(&self, n1: &[u8; 12]) -> Zeroizing<[u8; 32]> {
        let mut kx = Zeroizing::new([0u8; 32]);
        for (half, tag) in kx.chunks_exact_mut(16).zip([1u8, 2]) {
            let mut m = Zeroizing::new([0u8; 16]);
            m[..4].copy_from_slice(&[0, tag, b'X', 0]);
            m[4..].copy_from_slice(n1);
            for (b, k) in m.iter_mut().zip(self.k1.iter()) {
                *b ^= k;
            }
            let mut block = (*m).into();
            self.xaes.encrypt_block(&mut block);
            half.copy_from_slice(&block);
            block.as_mut_slice().zeroize();
        }
        kx
    }

    /// Whether this key is the database's.
    pub(crate) fn matches(&self) -> bool {
        self.kcv == self.ident.kcv
    }

    /// The tag a version 2 journal's first header carries (bytes 32..48):
    /// `AES(K, AES(K, 10 'J' 'H' 00 ‖ BE32(before) ‖ 0^8) ⊕ fields)` under
    /// the mask key `K`, where `fields` are the header's bytes 12..28
    /// (checksum seed, database size, sector size, page size): a CBC-MAC of
    /// two blocks, whose first block no checksum mask starts with.
    pub(crate) fn journal_tag(&self, before: u32, fields: &[u8]) -> [u8; 16] {
        let mut block = [0u8; 16];
        block[..4].copy_from_slice(&[0x10, b'J', b'H', 0]);
        block[4..8].copy_from_slice(&before.to_be_bytes());
        let mut b = block.into();
        self.mask.encrypt_block(&mut b);
        for (x, y) in b.iter_mut().zip(fields) {
            *x ^= y;
        }
        self.mask.encrypt_block(&mut b);
        b.into()
    }

    /// The mask of a checksum field. `B1 = class ‖ 0 0 0 ‖ BE32(pgno) ‖
    /// BE64(offset)`; version 1: `AES(mask key, B1)`; version 2:
    /// `AES(mask key, AES(mask key, B1) ⊕ binding)` (a CBC-MAC of two
    /// blocks), so a mask is never reused by another WAL generation or
    /// another journal.
    pub(crate) fn mask(&self, class: Class, pgno: u32, offset: u64, binding: &Binding) -> [u8; 16] {
        let mut block = [0u8; 16];
        block[0] = class as u8;
        block[4..8].copy_from_slice(&pgno.to_be_bytes());
        block[8..16].copy_from_slice(&offset.to_be_bytes());
        let mut b = block.into();
        self.mask.encrypt_block(&mut b);
        if self.ident.version == V1 {
            return b.into();
        }
        for (x, y) in b.iter_mut().zip(binding) {
            *x ^= y;
        }
        self.mask.encrypt_block(&mut b);
        b.into()
    }
}
