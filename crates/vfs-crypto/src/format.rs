//! The on-disk format: the per-page slice, the database identity, the
//! associated data, and the keys derived for one database.

use aes::Aes256;
use aes::cipher::{BlockCipherEncrypt, KeyInit};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::key::KdfParams;

/// The format version, byte 0 of every page's slice.
pub const FORMAT_VERSION: u8 = 1;

/// Bytes of the per-page slice: an 8-byte descriptor, a 24-byte nonce and
/// a 16-byte tag. It is also the reserve of a new database when the crypto
/// layer is used alone.
pub const SLICE: usize = 48;

/// Offsets inside the slice.
pub(crate) const NONCE_AT: usize = 8;
pub(crate) const TAG_AT: usize = 32;

/// The smallest page size the format accepts: SQLite needs at least 480
/// usable bytes per page, and the slice takes 48 (56 over cksm).
pub const MIN_PAGE_SIZE: usize = 1024;

/// Bytes 0..16 of page 1 as SQLite writes them; stored as the salt, given
/// back on decode.
pub(crate) const MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Bytes of the key check value in the descriptor.
pub(crate) const KCV_LEN: usize = 3;

/// Bytes of the associated data of a page.
pub(crate) const AD_LEN: usize = 8 + 16 + 1 + 4 + 4 + 8;

/// Which kind of file a page image lives in, bound into its associated data
/// so an image cannot move between a database, its WAL and its journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Class {
    Database = 1,
    Wal = 2,
    Journal = 3,
}

impl Class {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Class::Database => "database",
            Class::Wal => "WAL",
            Class::Journal => "journal",
        }
    }
}

/// How the master key of a database is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kdf {
    /// A raw 256-bit key (registration or `hexkey`).
    Raw,
    /// Argon2id over a passphrase with the database's salt.
    Argon2id(KdfParams),
}

impl Kdf {
    pub(crate) fn describe(self) -> String {
        match self {
            Kdf::Raw => "raw 256-bit key".into(),
            Kdf::Argon2id(p) => format!(
                "argon2id m={} KiB t={} p={}",
                p.memory_kib(),
                p.iterations,
                p.lanes
            ),
        }
    }
}

/// What identifies one encrypted database: its salt (page-1 bytes 0..16),
/// its key-derivation method and the check value of its key. The same for
/// every page of the database and of its WAL and journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) salt: [u8; 16],
    pub(crate) kdf: Kdf,
    pub(crate) kcv: [u8; KCV_LEN],
}

impl Identity {
    /// The 8-byte descriptor that opens every page's slice.
    pub(crate) fn descriptor(&self) -> [u8; 8] {
        let mut d = [0u8; 8];
        d[0] = FORMAT_VERSION;
        if let Kdf::Argon2id(p) = self.kdf {
            d[1] = 1;
            d[2] = p.memory_kib_log2;
            d[3] = p.iterations;
            d[4] = p.lanes;
        }
        d[5..8].copy_from_slice(&self.kcv);
        d
    }

    /// Reads an identity from a stored page 1: `salt` (bytes 0..16) and
    /// the descriptor of its slice. `Err`: why the file is not in this
    /// format.
    pub(crate) fn parse(salt: &[u8], desc: &[u8]) -> Result<Identity, String> {
        if desc[0] != FORMAT_VERSION {
            return Err(format!(
                "unknown encryption format version {} (this build reads version \
                 {FORMAT_VERSION})",
                desc[0]
            ));
        }
        let kdf = match desc[1] {
            0 if desc[2..5] == [0, 0, 0] => Kdf::Raw,
            1 => {
                let p = KdfParams {
                    memory_kib_log2: desc[2],
                    iterations: desc[3],
                    lanes: desc[4],
                };
                if !p.in_bounds() {
                    return Err(format!(
                        "Argon2id parameters out of bounds (2^{} KiB, {} passes, {} lanes): \
                         a damaged header or another format",
                        p.memory_kib_log2, p.iterations, p.lanes
                    ));
                }
                Kdf::Argon2id(p)
            }
            other => return Err(format!("unknown key-derivation method {other}")),
        };
        let mut s = [0u8; 16];
        s.copy_from_slice(&salt[..16]);
        let mut kcv = [0u8; KCV_LEN];
        kcv.copy_from_slice(&desc[5..8]);
        Ok(Identity { salt: s, kdf, kcv })
    }
}

/// The associated data of a page image.
pub(crate) fn associated_data(
    desc: &[u8],
    salt: &[u8; 16],
    class: Class,
    page_size: usize,
    pgno: u32,
    header: Option<&[u8]>,
) -> [u8; AD_LEN] {
    let mut ad = [0u8; AD_LEN];
    ad[..8].copy_from_slice(&desc[..8]);
    ad[8..24].copy_from_slice(salt);
    ad[24] = class as u8;
    ad[25..29].copy_from_slice(&(page_size as u32).to_be_bytes());
    ad[29..33].copy_from_slice(&pgno.to_be_bytes());
    if let Some(h) = header {
        ad[33..41].copy_from_slice(&h[..8]);
    }
    ad
}

/// The keys of one database for one master key.
pub(crate) struct DbKeys {
    /// The identity these keys were derived for.
    pub(crate) ident: Identity,
    /// The XAES-256-GCM key's block cipher (key schedule done once).
    xaes: Aes256,
    /// XAES-256-GCM's `K1` (the CMAC subkey of the key).
    k1: [u8; 16],
    /// Checksum masks.
    mask: Aes256,
    /// The key check value this key gives (equal to `ident.kcv` when the
    /// key is the database's).
    pub(crate) kcv: [u8; KCV_LEN],
}

impl Drop for DbKeys {
    fn drop(&mut self) {
        self.k1.zeroize();
    }
}

impl DbKeys {
    /// Derives the page key, the mask key and the check value from the
    /// master key with HKDF-SHA256 (salt: the database's salt).
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
        let mut l = [0u8; 16].into();
        xaes.encrypt_block(&mut l);
        let l: [u8; 16] = l.into();
        let mut k1 = [0u8; 16];
        for i in 0..16 {
            k1[i] = l[i] << 1 | l.get(i + 1).map_or(0, |n| n >> 7);
        }
        k1[15] ^= (l[0] >> 7) * 0x87;
        DbKeys {
            xaes,
            k1,
            mask: Aes256::new((&*mask).into()),
            ident,
            kcv,
        }
    }

    /// The AES-256-GCM instance XAES-256-GCM uses for nonces starting with
    /// `n1` (their first 12 bytes): `Kx = AES_K(M1 ⊕ K1) ‖ AES_K(M2 ⊕ K1)`
    /// with `M1 = 00 01 'X' 00 ‖ n1`, `M2 = 00 02 'X' 00 ‖ n1` (C2SP's
    /// XAES-256-GCM, steps 3 to 5). The last 12 bytes of the nonce are the
    /// GCM nonce under `Kx`.
    pub(crate) fn subkey(&self, n1: &[u8; 12]) -> Zeroizing<[u8; 32]> {
        let mut kx = Zeroizing::new([0u8; 32]);
        for (half, tag) in kx.chunks_exact_mut(16).zip([1u8, 2]) {
            let mut m = [0u8; 16];
            m[..4].copy_from_slice(&[0, tag, b'X', 0]);
            m[4..].copy_from_slice(n1);
            for (b, k) in m.iter_mut().zip(&self.k1) {
                *b ^= k;
            }
            let mut block = m.into();
            self.xaes.encrypt_block(&mut block);
            let out: [u8; 16] = block.into();
            half.copy_from_slice(&out);
            m.zeroize();
        }
        kx
    }

    /// Whether this key is the database's.
    pub(crate) fn matches(&self) -> bool {
        self.kcv == self.ident.kcv
    }

    /// The mask of a checksum field: AES-256 under the mask key of
    /// `class ‖ 0 0 0 ‖ BE32(pgno) ‖ BE64(offset)`.
    pub(crate) fn mask(&self, class: Class, pgno: u32, offset: u64) -> [u8; 16] {
        let mut block = [0u8; 16];
        block[0] = class as u8;
        block[4..8].copy_from_slice(&pgno.to_be_bytes());
        block[8..16].copy_from_slice(&offset.to_be_bytes());
        let mut b = block.into();
        self.mask.encrypt_block(&mut b);
        b.into()
    }
}
