//! Unit tests of the codec against the page layer's contract.

use vfs_core::{FileKind, OpenAccess, OpenName, OpenOptions, codes};
use vfs_page::{Direction, FileInfo, PageCodec, PageCtx, Stacking, StreamCtx};

use crate::format::{AD_LEN, AD_LEN_V1, Class, Identity, Kdf, MAGIC, Place, associated_data};
use crate::{CryptoCodec, CryptoOptions, CryptoState, KdfParams, Key, SLICE};

const P: usize = 4096;

fn codec() -> CryptoCodec {
    CryptoCodec::new(CryptoOptions {
        key: Some(Key::from_bytes([7; 32])),
        kdf: KdfParams::FAST_INSECURE,
        ..CryptoOptions::default()
    })
}

fn open(c: &CryptoCodec, kind: FileKind, path: &str) -> CryptoState {
    let name = OpenName::new(path, kind);
    c.open(
        &FileInfo {
            kind,
            path: vfs_core::FileName::new(path),
            stacking: Stacking::default(),
        },
        &name,
        OpenOptions::new(kind, OpenAccess::Create),
    )
    .unwrap()
}

fn ctx(kind: FileKind, pgno: u32, offset: u64, reserve: usize) -> PageCtx<'static> {
    PageCtx {
        kind,
        path: vfs_core::FileName::new("/x.db"),
        pgno,
        page_size: P,
        reserve: Some(reserve),
        stored_reserve: None,
        offset,
        partial: false,
        tentative: false,
        recovery: false,
        frame_header: match kind {
            FileKind::Wal => Some(FRAME_HEADER),
            _ => None,
        },
        stacking: Stacking::default(),
    }
}

/// Bytes 0..16 of a WAL frame header: page 3, not a commit, two salts.
const FRAME_HEADER: [u8; 16] = [0, 0, 0, 3, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8];

/// A journal header (32 bytes) as SQLite writes it: magic, a record count,
/// a checksum seed, the database size, the sector and page sizes.
fn journal_header(seed: u32) -> Vec<u8> {
    let mut h = vec![0xd9, 0xd5, 0x05, 0xf9, 0x20, 0xa1, 0x63, 0xd7];
    h.extend_from_slice(&1u32.to_be_bytes());
    h.extend_from_slice(&seed.to_be_bytes());
    h.extend_from_slice(&10u32.to_be_bytes());
    h.extend_from_slice(&512u32.to_be_bytes());
    h.extend_from_slice(&(P as u32).to_be_bytes());
    h.resize(512, 0);
    h
}

fn header_ctx(path: &str) -> StreamCtx<'_> {
    StreamCtx {
        kind: FileKind::MainJournal,
        path: vfs_core::FileName::new(path),
        offset: 0,
    }
}

/// Opens a journal handle and lets it write its header; returns the
/// header as stored.
fn journal_with_header(c: &CryptoCodec, path: &str, seed: u32) -> (CryptoState, Vec<u8>) {
    let mut st = open(c, FileKind::MainJournal, path);
    let mut h = journal_header(seed);
    assert!(
        c.journal_header(&mut st, &header_ctx(path), &mut h, Direction::Encode)
            .unwrap()
    );
    (st, h)
}

fn journal(c: &CryptoCodec, path: &str, seed: u32) -> CryptoState {
    journal_with_header(c, path, seed).0
}

/// A page image as SQLite would hand it over: page 1 starts with the
/// header string and names the reserve; the reserved area is zero.
fn image(pgno: u32, reserve: usize) -> Vec<u8> {
    let mut img: Vec<u8> = (0..P).map(|i| (i * 31 + pgno as usize) as u8).collect();
    if pgno == 1 {
        img[..16].copy_from_slice(MAGIC);
        img[16..18].copy_from_slice(&(P as u16).to_be_bytes());
        img[18] = 1;
        img[19] = 1;
        img[20] = reserve as u8;
        img[21..24].copy_from_slice(&[64, 32, 32]);
    }
    img[P - reserve..].fill(0);
    img
}

#[test]
fn round_trip_keeps_every_byte_outside_the_slice() {
    for below in [0u8, 8] {
        let c = codec();
        let reserve = SLICE + usize::from(below);
        let mut db = open(&c, FileKind::MainDb, "/x.db");
        for pgno in [1u32, 2, 77] {
            let mut original = image(pgno, reserve);
            // The layer below owns the last `below` bytes; they pass as is.
            original[P - usize::from(below)..].fill(0xAB);
            let mut stored = original.clone();
            let ctx = PageCtx {
                stacking: Stacking {
                    below: usize::from(below),
                    above: 0,
                },
                ..ctx(
                    FileKind::MainDb,
                    pgno,
                    u64::from(pgno - 1) * P as u64,
                    reserve,
                )
            };
            c.encode(&mut db, &ctx, &mut stored).unwrap();
            assert_ne!(stored[100..200], original[100..200], "encrypted");
            assert_eq!(
                stored[P - usize::from(below)..],
                original[P - usize::from(below)..]
            );
            if pgno == 1 {
                assert_ne!(&stored[..16], MAGIC, "the salt replaces the header string");
                assert_eq!(stored[16..24], original[16..24], "clear header bytes");
            }
            let mut back = stored.clone();
            c.decode(&mut db, &ctx, &mut back).unwrap();
            assert_eq!(back, original);
            // Two encryptions of one image differ (random nonces).
            let mut again = original.clone();
            c.encode(&mut db, &ctx, &mut again).unwrap();
            assert_ne!(again, stored);
        }
    }
}

#[test]
fn an_image_decodes_only_where_it_was_written() {
    let c = codec();
    let mut db = open(&c, FileKind::MainDb, "/x.db");
    let mut wal = open(&c, FileKind::Wal, "/x.db-wal");
    let mut p1 = image(1, SLICE);
    c.encode(&mut db, &ctx(FileKind::MainDb, 1, 0, SLICE), &mut p1)
        .unwrap();
    let mut page = image(3, SLICE);
    let at = ctx(FileKind::MainDb, 3, 2 * P as u64, SLICE);
    c.encode(&mut db, &at, &mut page).unwrap();
    let fails = |st: &mut CryptoState, ctx: PageCtx<'_>| {
        let mut img = page.clone();
        c.decode(st, &ctx, &mut img).unwrap_err().code()
    };
    // Another page number, another page size's place, another file kind.
    assert_eq!(
        fails(&mut db, ctx(FileKind::MainDb, 4, 3 * P as u64, SLICE)),
        Some(codes::SQLITE_IOERR_DATA)
    );
    assert_eq!(
        fails(&mut wal, ctx(FileKind::Wal, 3, 4096, SLICE)),
        Some(codes::SQLITE_IOERR_DATA)
    );
    // The journal handle writes a record of page 3 at offset 516; the
    // database's page 3 read in its place is refused, not zeroed.
    let mut journal = journal(&c, "/x.db-journal", 7);
    let rec = ctx(FileKind::MainJournal, 3, 516, SLICE);
    c.encode(&mut journal, &rec, &mut image(3, SLICE)).unwrap();
    assert_eq!(fails(&mut journal, rec), Some(codes::SQLITE_IOERR_DATA));
    // Even in a hot journal's playback it is torn, never content.
    let hot = PageCtx {
        recovery: true,
        ..rec
    };
    assert_eq!(
        fails(&mut journal, hot),
        Some(codes::SQLITE_IOERR_SHORT_READ)
    );
}

#[test]
fn recovery_reads_find_bad_frames_and_records_torn() {
    let c = codec();
    let mut db = open(&c, FileKind::MainDb, "/y.db");
    let mut p1 = image(1, SLICE);
    c.encode(&mut db, &ctx(FileKind::MainDb, 1, 0, SLICE), &mut p1)
        .unwrap();
    let mut wal = open(&c, FileKind::Wal, "/y.db-wal");
    let frame = ctx(FileKind::Wal, 2, 32 + 24, SLICE);
    let mut stored = image(2, SLICE);
    c.encode(&mut wal, &frame, &mut stored).unwrap();
    stored[10] ^= 1;
    // A normal read or a checkpoint: an error.
    let mut img = stored.clone();
    let e = c.decode(&mut wal, &frame, &mut img).unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_IOERR_DATA));
    // Recovery: torn, and no byte of it handed back.
    let recovering = PageCtx {
        recovery: true,
        ..frame
    };
    let mut img = stored.clone();
    let e = c.decode(&mut wal, &recovering, &mut img).unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_IOERR_SHORT_READ));
    assert!(img.iter().all(|b| *b == 0));

    // A journal record written by another handle (a hot journal).
    let (mut writer, mut h) = journal_with_header(&c, "/y.db-journal", 9);
    let rec = ctx(FileKind::MainJournal, 2, 516, SLICE);
    let mut stored = image(2, SLICE);
    c.encode(&mut writer, &rec, &mut stored).unwrap();
    stored[P / 2] ^= 1;
    let mut reader = open(&c, FileKind::MainJournal, "/y.db-journal");
    assert!(
        c.journal_header(
            &mut reader,
            &header_ctx("/y.db-journal"),
            &mut h,
            Direction::Decode
        )
        .unwrap()
    );
    assert_eq!(h[28..48], [0; 20], "the codec's bytes read back as zeros");
    let mut img = stored.clone();
    let e = c
        .decode(
            &mut reader,
            &PageCtx {
                recovery: true,
                ..rec
            },
            &mut img,
        )
        .unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_IOERR_SHORT_READ));
    assert!(img.iter().all(|b| *b == 0));
}

#[test]
fn checksum_masks_are_involutions_bound_to_their_place() {
    let c = codec();
    let mut db = open(&c, FileKind::MainDb, "/z.db");
    let mut p1 = image(1, SLICE);
    c.encode(&mut db, &ctx(FileKind::MainDb, 1, 0, SLICE), &mut p1)
        .unwrap();
    let mut wal = open(&c, FileKind::Wal, "/z.db-wal");
    let h = ctx(FileKind::Wal, 5, 32, SLICE);
    let plain = [1, 2, 3, 4, 5, 6, 7, 8];
    let mut sum = plain;
    c.wal_frame_checksum(&mut wal, &h, &mut sum, Direction::Encode)
        .unwrap();
    assert_ne!(sum, plain);
    let masked = sum;
    c.wal_frame_checksum(&mut wal, &h, &mut sum, Direction::Decode)
        .unwrap();
    assert_eq!(sum, plain);
    let mut elsewhere = plain;
    let h2 = ctx(FileKind::Wal, 5, 32 + 24 + P as u64, SLICE);
    c.wal_frame_checksum(&mut wal, &h2, &mut elsewhere, Direction::Encode)
        .unwrap();
    assert_ne!(elsewhere, masked);
    // Another WAL generation (other salts): another mask.
    let mut other_generation = plain;
    let h3 = PageCtx {
        frame_header: Some([0, 0, 0, 5, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9]),
        ..h
    };
    c.wal_frame_checksum(&mut wal, &h3, &mut other_generation, Direction::Encode)
        .unwrap();
    assert_ne!(other_generation, masked);
    let mut journal = journal(&c, "/z.db-journal", 11);
    let mut four = [9, 9, 9, 9];
    let j = ctx(FileKind::MainJournal, 5, 516 + P as u64, SLICE);
    c.journal_checksum(&mut journal, &j, &mut four, Direction::Encode)
        .unwrap();
    assert_ne!(four, [9, 9, 9, 9]);
    c.journal_checksum(&mut journal, &j, &mut four, Direction::Decode)
        .unwrap();
    assert_eq!(four, [9, 9, 9, 9]);
}

#[test]
fn temporary_files_are_a_position_local_stream() {
    let c = codec();
    let mut st = open(&c, FileKind::TempJournal, "<temp>");
    let data: Vec<u8> = (0..1000).map(|i| i as u8).collect();
    let at = |offset| StreamCtx {
        kind: FileKind::TempJournal,
        path: vfs_core::FileName::new("<temp>"),
        offset,
    };
    let mut whole = data.clone();
    c.encode_stream(&mut st, &at(13), &mut whole).unwrap();
    assert_ne!(whole, data);
    // The same bytes encrypted in pieces at their offsets match.
    let mut pieces = data.clone();
    let (a, b) = pieces.split_at_mut(333);
    c.encode_stream(&mut st, &at(13), a).unwrap();
    c.encode_stream(&mut st, &at(13 + 333), b).unwrap();
    assert_eq!(pieces, whole);
    c.decode_stream(&mut st, &at(13), &mut whole).unwrap();
    assert_eq!(whole, data);
    // Another file has another key.
    let mut other = open(&c, FileKind::TempJournal, "<temp>");
    let mut x = data.clone();
    c.encode_stream(&mut other, &at(13), &mut x).unwrap();
    assert_ne!(x, pieces);
}

/// The page cipher is XAES-256-GCM as the RustCrypto `xaes-256-gcm` crate
/// implements it, keyed with HKDF-SHA256(salt, master, "vfs-crypto/v1/page").
#[test]
fn pages_are_xaes_256_gcm() {
    use xaes_256_gcm::aead::{AeadInOut, KeyInit};
    let master = [0x42u8; 32];
    let ident = Identity {
        version: 2,
        salt: [9; 16],
        kdf: Kdf::Raw,
        kcv: [0; 3],
    };
    let keys = crate::derive::DbKeys::derive(&master, ident.clone());
    let mut page_key = [0u8; 32];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&ident.salt), &master)
        .expand(b"vfs-crypto/v1/page", &mut page_key)
        .unwrap();
    let reference = xaes_256_gcm::Xaes256Gcm::new(&page_key.into());
    let nonce: [u8; 24] = core::array::from_fn(|i| i as u8 * 7);
    let (n1, n2) = nonce.split_at(12);
    let plain: Vec<u8> = (0..4000).map(|i| (i % 251) as u8).collect();
    let ad = [5u8; AD_LEN];

    let mut theirs = plain.clone();
    let their_tag = reference
        .encrypt_inout_detached(&nonce.into(), &ad, theirs.as_mut_slice().into())
        .unwrap();
    // Every page cipher this build has gives the reference's bytes.
    let ciphers = [
        #[cfg(feature = "aws-lc")]
        crate::PageCipher::AwsLc,
        crate::PageCipher::RustCrypto,
        #[cfg(feature = "ring")]
        crate::PageCipher::Ring,
    ];
    for cipher in ciphers {
        let gcm = crate::gcm::PageGcm::new(cipher, &keys.subkey(n1.try_into().unwrap()));
        let mut ours = plain.clone();
        let tag = gcm.seal(n2.try_into().unwrap(), &ad, &mut ours).unwrap();
        assert_eq!(ours, theirs, "{cipher:?}");
        assert_eq!(tag.as_slice(), their_tag.as_slice(), "{cipher:?}");
        reference
            .decrypt_inout_detached(&nonce.into(), &ad, ours.as_mut_slice().into(), &their_tag)
            .unwrap();
        assert_eq!(ours, plain);
    }
}

#[test]
fn descriptor_round_trip_and_refusals() {
    let ident = Identity {
        version: 2,
        salt: [5; 16],
        kdf: Kdf::Argon2id(KdfParams::DEFAULT),
        kcv: [1, 2, 3],
    };
    let d = ident.descriptor();
    assert_eq!(d, [2, 1, 16, 3, 1, 1, 2, 3]);
    assert_eq!(Identity::parse(&[5; 16], &d).unwrap(), ident);
    let raw = Identity {
        kdf: Kdf::Raw,
        ..ident.clone()
    };
    assert_eq!(raw.descriptor(), [2, 0, 0, 0, 0, 1, 2, 3]);
    // Version 1 still reads.
    let v1 = Identity {
        version: 1,
        ..raw.clone()
    };
    assert_eq!(
        Identity::parse(&[5; 16], &[1, 0, 0, 0, 0, 1, 2, 3]).unwrap(),
        v1
    );
    for bad in [
        [3, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0, 0],
        [1, 2, 0, 0, 0, 0, 0, 0],
        [1, 0, 1, 0, 0, 0, 0, 0],
        [1, 1, 30, 3, 1, 0, 0, 0],
        [1, 1, 16, 0, 1, 0, 0, 0],
    ] {
        assert!(Identity::parse(&[0; 16], &bad).is_err(), "{bad:?}");
    }
}

#[test]
fn associated_data_layout() {
    let place = Place {
        class: Class::Wal,
        page_size: 4096,
        pgno: 0x0102_0304,
        offset: 0x1122_3344_5566_7788,
        binding: [0xBB; 16],
    };
    let header = [16, 0, 1, 1, 48, 64, 32, 32];
    // Version 1: 41 bytes, no binding, no offset.
    let (ad, n) = associated_data(
        &[1, 0, 0, 0, 0, 9, 9, 9],
        &[0xAA; 16],
        &place,
        Some(&header),
    );
    assert_eq!(n, AD_LEN_V1);
    assert_eq!(ad[..8], [1, 0, 0, 0, 0, 9, 9, 9]);
    assert_eq!(ad[8..24], [0xAA; 16]);
    assert_eq!(ad[24], 2);
    assert_eq!(ad[25..29], [0, 0, 0x10, 0]);
    assert_eq!(ad[29..33], [1, 2, 3, 4]);
    assert_eq!(ad[33..41], header);
    // Version 2: then the binding and the offset.
    let (ad, n) = associated_data(
        &[2, 0, 0, 0, 0, 9, 9, 9],
        &[0xAA; 16],
        &place,
        Some(&header),
    );
    assert_eq!(n, AD_LEN);
    assert_eq!(ad[..8], [2, 0, 0, 0, 0, 9, 9, 9]);
    assert_eq!(ad[33..41], header);
    assert_eq!(ad[41..57], [0xBB; 16]);
    assert_eq!(ad[57..65], [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
}

#[test]
fn a_missing_key_is_not_a_database() {
    let c = CryptoCodec::new(CryptoOptions::default());
    let mut db = open(&c, FileKind::MainDb, "/k.db");
    let mut p1 = image(1, SLICE);
    let e = c
        .encode(&mut db, &ctx(FileKind::MainDb, 1, 0, SLICE), &mut p1)
        .unwrap_err();
    assert_eq!(e.code(), Some(codes::SQLITE_NOTADB));
    assert!(e.message().contains("no encryption key"));
}

#[test]
fn a_journal_header_not_written_for_this_database_is_refused() {
    let c = codec();
    let mut db = open(&c, FileKind::MainDb, "/h.db");
    let mut p1 = image(1, SLICE);
    c.encode(&mut db, &ctx(FileKind::MainDb, 1, 0, SLICE), &mut p1)
        .unwrap();
    let (_, stored) = journal_with_header(&c, "/h.db-journal", 5);
    assert_ne!(stored[28..48], [0; 20], "stamped");
    let decode = |h: &[u8]| {
        let mut reader = open(&c, FileKind::MainJournal, "/h.db-journal");
        let mut h = h.to_vec();
        c.journal_header(
            &mut reader,
            &header_ctx("/h.db-journal"),
            &mut h,
            Direction::Decode,
        )
        .unwrap()
    };
    assert!(decode(&stored));
    // SQLite's own header without the stamp (planted), or with any field
    // SQLite reads changed (the database size it truncates to, the page
    // size), or with the stamp changed: refused.
    assert!(!decode(&journal_header(5)));
    for at in [12, 16, 19, 20, 24, 28, 40] {
        let mut bad = stored.clone();
        bad[at] ^= 1;
        assert!(!decode(&bad), "byte {at}");
    }
    // The magic and record count SQLite rewrites at sync are not covered.
    let mut synced = stored.clone();
    synced[8..12].copy_from_slice(&7u32.to_be_bytes());
    assert!(decode(&synced));
}
