//! The on-disk format: the per-page slice, the database identity and the
//! associated data. Parsing only: no keys here (see `derive.rs`), so a
//! read-only inspection of a file can reuse it.

use crate::key::KdfParams;

/// The format version new databases are written in, byte 0 of every
/// page's slice. Version 1 databases are still read and written (in
/// version 1); `docs/formats.md` describes both.
pub const FORMAT_VERSION: u8 = 2;

/// The first version: checksum masks and associated data bound to the
/// image's place only.
pub(crate) const V1: u8 = 1;

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

/// Bytes of the associated data of a page in version 1.
pub(crate) const AD_LEN_V1: usize = 8 + 16 + 1 + 4 + 4 + 8;

/// Bytes of the associated data of a page in version 2: version 1's, the
/// binding, the image's offset.
pub(crate) const AD_LEN: usize = AD_LEN_V1 + 16 + 8;

/// What an image or a masked checksum is bound to besides its place
/// (version 2): for a journal record, the journal's binding
/// ([`JournalBinding`]); for a WAL frame's checksum, the salts in the
/// frame's header (bytes 8..16); zeros otherwise.
pub(crate) type Binding = [u8; 16];

/// What version 2 binds the records of a rollback journal to: `before`,
/// the id of the stored page 1 when the journal's transaction began
/// (stamped in the journal header's bytes 28..32; 0: unknown), and `id`,
/// the journal's own id (SQLite's random checksum seed, header bytes
/// 12..16), which every page 1 the transaction writes carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JournalBinding {
    pub(crate) before: u32,
    pub(crate) id: u32,
}

impl JournalBinding {
    /// The binding in associated data and masks.
    pub(crate) fn binding(self) -> Binding {
        let mut b = [0u8; 16];
        b[..4].copy_from_slice(&self.before.to_be_bytes());
        b[4..8].copy_from_slice(&self.id.to_be_bytes());
        b
    }

    /// Whether a database whose stored page 1 has id `now` is in a state
    /// this journal may roll back: the one its transaction began from
    /// (`before`), or one its transaction wrote (`id`). `before` 0 (not
    /// known when the journal was written) accepts every state.
    pub(crate) fn fits(self, now: u32) -> bool {
        self.before == 0 || now == self.before || now == self.id
    }
}

/// The binding of a WAL frame's checksum: the salts in its header.
pub(crate) fn wal_binding(frame_header: &[u8; 16]) -> Binding {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&frame_header[8..16]);
    b
}

/// Version 2: the id a main-database page 1 carries in the first 4 bytes
/// of its GCM nonce (slice bytes 20..24), telling which transaction wrote
/// it (a rollback journal's id) or, outside a journal, a random value.
pub(crate) fn page1_id(slice: &[u8]) -> u32 {
    u32::from_be_bytes([
        slice[NONCE_AT + 12],
        slice[NONCE_AT + 13],
        slice[NONCE_AT + 14],
        slice[NONCE_AT + 15],
    ])
}

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

/// What identifies one encrypted database: its format version, its salt
/// (page-1 bytes 0..16), its key-derivation method and the check value of
/// its key. The same for every page of the database and of its WAL and
/// journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Identity {
    pub(crate) version: u8,
    pub(crate) salt: [u8; 16],
    pub(crate) kdf: Kdf,
    pub(crate) kcv: [u8; KCV_LEN],
}

impl Identity {
    /// The 8-byte descriptor that opens every page's slice.
    pub(crate) fn descriptor(&self) -> [u8; 8] {
        let mut d = [0u8; 8];
        d[0] = self.version;
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
        if !(V1..=FORMAT_VERSION).contains(&desc[0]) {
            return Err(format!(
                "unknown encryption format version {} (this build reads versions {V1} to \
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
        Ok(Identity {
            version: desc[0],
            salt: s,
            kdf,
            kcv,
        })
    }
}

/// Where a page image lives, for its associated data and checksum masks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place {
    pub(crate) class: Class,
    pub(crate) page_size: usize,
    pub(crate) pgno: u32,
    /// The image's offset in its file (version 2).
    pub(crate) offset: u64,
    /// What else it is bound to (version 2).
    pub(crate) binding: Binding,
}

/// The associated data of a page image; its length depends on the
/// version (byte 0 of `desc`): [`AD_LEN_V1`] or [`AD_LEN`].
pub(crate) fn associated_data(
    desc: &[u8],
    salt: &[u8; 16],
    place: &Place,
    header: Option<&[u8]>,
) -> ([u8; AD_LEN], usize) {
    let mut ad = [0u8; AD_LEN];
    ad[..8].copy_from_slice(&desc[..8]);
    ad[8..24].copy_from_slice(salt);
    ad[24] = place.class as u8;
    ad[25..29].copy_from_slice(&(place.page_size as u32).to_be_bytes());
    ad[29..33].copy_from_slice(&place.pgno.to_be_bytes());
    if let Some(h) = header {
        ad[33..41].copy_from_slice(&h[..8]);
    }
    if desc[0] == V1 {
        return (ad, AD_LEN_V1);
    }
    ad[41..57].copy_from_slice(&place.binding);
    ad[57..65].copy_from_slice(&place.offset.to_be_bytes());
    (ad, AD_LEN)
}
