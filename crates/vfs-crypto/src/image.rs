//! Sealing and opening page images: the slice (descriptor, nonce, tag),
//! the associated data, page 1's salt and clear header, and the masks of
//! the checksums SQLite writes over plaintext.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rand::RngCore;
use vfs_core::{Error, FileKind, Result, codes};
use vfs_page::PageCtx;

use crate::codec::{CryptoCodec, Fail, PageState};
use crate::derive::DbKeys;
use crate::format::{
    Binding, Class, Identity, MAGIC, NONCE_AT, Place, SLICE, TAG_AT, V1, associated_data, page1_id,
    wal_binding,
};
use crate::page1::Page1Draft;
use crate::shared::Page1State;

/// What SQLite reads in place of a main-database page 1 it asked only part
/// of (the header read when a connection opens) when the page cannot be
/// decrypted: the header string, the clear bytes 16..24, zeros. The error
/// is reported at the first whole read of page 1.
pub(crate) fn clear_header_only(image: &mut [u8]) {
    image[..16].copy_from_slice(MAGIC);
    image[24..].fill(0);
}

impl CryptoCodec {
    /// What a page image or checksum of `ctx` is bound to besides its
    /// place (version 2): a journal's binding; for a WAL frame's checksum,
    /// the salts in its header. WAL page images are bound to their offset
    /// only: SQLite writes some frame headers with zero salts and fills
    /// them in at commit (walRewriteChecksums), after their page.
    fn binding(
        &self,
        st: &PageState,
        keys: &DbKeys,
        ctx: &PageCtx<'_>,
        checksum: bool,
    ) -> Result<Binding> {
        if keys.ident.version == V1 {
            return Ok([0; 16]);
        }
        match st.class {
            Class::Database => Ok([0; 16]),
            Class::Wal if !checksum => Ok([0; 16]),
            Class::Wal => ctx.frame_header.as_ref().map(wal_binding).ok_or_else(|| {
                Error::new(
                    codes::SQLITE_INTERNAL,
                    "WAL frame checksum without its frame header",
                )
            }),
            Class::Journal => st.journal.map(|j| j.binding()).ok_or_else(|| {
                Error::new(
                    codes::SQLITE_IOERR,
                    "journal record before the journal's header was written or read",
                )
            }),
        }
    }

    fn place(&self, st: &PageState, keys: &DbKeys, ctx: &PageCtx<'_>) -> Result<Place> {
        Ok(Place {
            class: st.class,
            page_size: ctx.page_size,
            pgno: ctx.pgno,
            offset: ctx.offset,
            binding: self.binding(st, keys, ctx, false)?,
        })
    }

    pub(crate) fn encode_page(
        &self,
        st: &mut PageState,
        ctx: &PageCtx<'_>,
        image: &mut [u8],
    ) -> Result<()> {
        let start = self.slice_start(ctx).map_err(|why| {
            Error::new(
                codes::SQLITE_IOERR_WRITE,
                format!(
                    "{why}: new databases get the reserve automatically on their own \
                     connection; for VACUUM INTO add &reserve={} to the target URI (or use \
                     vfs_crypto::vacuum_into_target), for an ATTACHed database set \
                     SQLITE_FCNTL_RESERVE_BYTES to {} before its first write",
                    ctx.stacking.total(SLICE),
                    ctx.stacking.total(SLICE)
                ),
            )
        })?;
        if ctx.pgno == 1 && image[..16] != *MAGIC {
            return Err(Error::new(
                codes::SQLITE_IOERR_WRITE,
                "page 1 does not start with the SQLite header string",
            ));
        }
        let keys = match st.class {
            Class::Database => self.keys_for_write(st, ctx)?,
            _ => self.trusted(st)?,
        };
        st.use_keys(&keys);
        let place = self.place(st, &keys, ctx)?;
        let main_page_1 = ctx.kind == FileKind::MainDb && ctx.pgno == 1;
        // Page 1 carries the id of the journal being written, or of the
        // state a journal being played back restores, or a random one.
        let page1_id = (main_page_1 && keys.ident.version != V1).then(|| {
            let shared = st.db.lock();
            shared.journal.or(shared.restoring).unwrap_or_else(|| {
                loop {
                    let id = rand::thread_rng().next_u32();
                    if id != 0 {
                        break id;
                    }
                }
            })
        });
        // The plaintext of page 1 as a decode gives it back, kept in the
        // buffers of the handle's last page 1.
        let page1 = main_page_1.then(|| {
            let mut draft = Page1Draft::new(st.page1.take());
            draft.set_plain(image)[start..start + SLICE].fill(0);
            draft
        });
        let desc = keys.ident.descriptor();
        let salt = keys.ident.salt;
        let (head, slice) = image.split_at_mut(start);
        let slice = &mut slice[..SLICE];
        slice[..8].copy_from_slice(&desc);
        if st.class == Class::Journal
            && !st.ciphers.has_session()
            && let Some(session) = st.db.lock().take_session(&keys)
        {
            // The session of the database's previous journal (same keys).
            st.ciphers.adopt_session(session);
        }
        let (n1, gcm) = st.ciphers.for_encrypt(&keys);
        slice[NONCE_AT..NONCE_AT + 12].copy_from_slice(n1);
        rand::thread_rng().fill_bytes(&mut slice[NONCE_AT + 12..TAG_AT]);
        if let Some(id) = page1_id {
            slice[NONCE_AT + 12..NONCE_AT + 16].copy_from_slice(&id.to_be_bytes());
        }
        let nonce: [u8; 12] = slice[NONCE_AT + 12..TAG_AT]
            .try_into()
            .map_err(|_| Error::new(codes::SQLITE_INTERNAL, "nonce length"))?;
        let (header, body) = if ctx.pgno == 1 {
            let (h, b) = head.split_at_mut(24);
            h[..16].copy_from_slice(&salt);
            (Some(&h[16..24]), b)
        } else {
            (None, head)
        };
        let (ad, ad_len) = associated_data(&desc, &salt, &place, header);
        let tag = gcm
            .seal(&nonce, &ad[..ad_len], body)
            .ok_or_else(|| Error::new(codes::SQLITE_IOERR_WRITE, "page too large to encrypt"))?;
        slice[TAG_AT..].copy_from_slice(&tag);
        if let Some(mut draft) = page1 {
            let id = page1_id.unwrap_or(0);
            st.db.lock().saw_page1(Page1State::Authenticated(id));
            draft.set_stored(&image[..start + SLICE]);
            st.page1 = Some(draft.finish(id, keys));
        }
        self.encrypted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    pub(crate) fn decode_page(
        &self,
        st: &mut PageState,
        ctx: &PageCtx<'_>,
        image: &mut [u8],
    ) -> std::result::Result<(), Fail> {
        let hard = |code: i32, m: String| Fail::Hard(Error::new(code, m));
        let main_page_1 = ctx.kind == FileKind::MainDb && ctx.pgno == 1;
        let start = match self.slice_start(ctx) {
            Ok(s) => s,
            Err(why) => {
                if main_page_1 {
                    st.db.lock().saw_page1(Page1State::Failed);
                }
                let plain = main_page_1 && image[..16] == *MAGIC;
                return Err(hard(
                    codes::SQLITE_NOTADB,
                    if plain {
                        format!(
                            "this is a plaintext SQLite database, not an encrypted one ({why}); \
                             encrypt a copy with vfs_crypto::encrypt_database"
                        )
                    } else {
                        format!("not an encrypted database: {why}")
                    },
                ));
            }
        };
        if main_page_1 {
            let r = self.decode_page1(st, ctx, image, start);
            if r.is_err() {
                st.db.lock().saw_page1(Page1State::Failed);
            }
            return r;
        }
        let keys = self.trusted(st).map_err(Fail::Hard)?;
        st.use_keys(&keys);
        let place = self.place(st, &keys, ctx).map_err(Fail::Hard)?;
        self.open_image(st, &keys, &place, image, start)
    }

    /// Page 1 of the main database: its identity is read from it (salt and
    /// descriptor, in clear) and becomes the database's only if the page
    /// authenticates under it.
    fn decode_page1(
        &self,
        st: &mut PageState,
        ctx: &PageCtx<'_>,
        image: &mut [u8],
        start: usize,
    ) -> std::result::Result<(), Fail> {
        if let Some(plain) = self.cached_page1(st, image, start) {
            image.copy_from_slice(plain);
            return Ok(());
        }
        let trusted = st.db.lock().trusted.clone();
        let candidate = match Identity::parse(&image[..16], &image[start..start + 8]) {
            Ok(ident) => ident,
            Err(why) => {
                let plain = image[..16] == *MAGIC;
                return Err(Fail::Hard(Error::new(
                    codes::SQLITE_NOTADB,
                    if plain {
                        "this is a plaintext SQLite database, not an encrypted one; encrypt a \
                         copy with vfs_crypto::encrypt_database"
                            .into()
                    } else {
                        format!("not a database in this encryption format: {why}")
                    },
                )));
            }
        };
        let (keys, entry) = match trusted {
            Some(t) if t.ident == candidate => (t, None),
            _ => self.keys_for(st, candidate).map_err(Fail::Hard)?,
        };
        st.use_keys(&keys);
        let id = if keys.ident.version == V1 {
            0
        } else {
            page1_id(&image[start..start + SLICE])
        };
        let mut draft = Page1Draft::new(st.page1.take());
        draft.set_stored(&image[..start + SLICE]);
        let place = Place {
            class: Class::Database,
            page_size: ctx.page_size,
            pgno: 1,
            offset: 0,
            binding: [0; 16],
        };
        self.open_image(st, &keys, &place, image, start)?;
        self.trust(st, &keys, entry);
        st.db.lock().saw_page1(Page1State::Authenticated(id));
        draft.set_plain(image);
        st.page1 = Some(draft.finish(id, keys));
        Ok(())
    }

    /// The plaintext of `image`, a stored main-database page 1 whose slice
    /// starts at `start`, when it is the page 1 this handle last wrote or
    /// authenticated, under the keys the database trusts now (see
    /// `page1.rs` for why that is as good as decrypting it); the stored
    /// page 1 is then known as authenticated, as after a decryption.
    fn cached_page1<'s>(&self, st: &'s PageState, image: &[u8], start: usize) -> Option<&'s [u8]> {
        let p = st.page1.as_ref()?;
        let mut shared = st.db.lock();
        let trusted = shared.trusted.as_ref()?;
        if !(Arc::ptr_eq(&p.keys, trusted) && p.matches(image, start + SLICE)) {
            return None;
        }
        shared.saw_page1(Page1State::Authenticated(p.id));
        Some(p.plain())
    }

    /// A read of part of main-database page 1 (SQLite's read of the change
    /// counter that starts every rollback-mode transaction): served from
    /// the cached plaintext when the stored page 1 is the cached one,
    /// without decoding the whole page into `image`.
    pub(crate) fn page1_part(
        &self,
        st: &PageState,
        ctx: &PageCtx<'_>,
        image: &[u8],
        range: std::ops::Range<usize>,
        out: &mut [u8],
    ) -> bool {
        if ctx.kind != FileKind::MainDb || ctx.pgno != 1 {
            return false;
        }
        let Ok(start) = self.slice_start(ctx) else {
            return false;
        };
        match self.cached_page1(st, image, start) {
            Some(plain) => {
                out.copy_from_slice(&plain[range]);
                true
            }
            None => false,
        }
    }

    /// Checks the descriptor, authenticates and decrypts `image` in place;
    /// the slice then reads as zeros and page 1 gets its header string back.
    fn open_image(
        &self,
        st: &mut PageState,
        keys: &DbKeys,
        place: &Place,
        image: &mut [u8],
        start: usize,
    ) -> std::result::Result<(), Fail> {
        let desc = keys.ident.descriptor();
        let (head, slice) = image.split_at_mut(start);
        let slice = &mut slice[..SLICE];
        if slice[..8] != desc {
            return Err(Fail::Auth(if slice[0] != desc[0] {
                format!("unknown format version {} in the page's slice", slice[0])
            } else {
                "the page's descriptor is not this database's".into()
            }));
        }
        let mut n1 = [0u8; 12];
        n1.copy_from_slice(&slice[NONCE_AT..NONCE_AT + 12]);
        let mut nonce = [0u8; 12];
        nonce.copy_from_slice(&slice[NONCE_AT + 12..TAG_AT]);
        let mut tag = [0u8; 16];
        tag.copy_from_slice(&slice[TAG_AT..]);
        let (header, body) = if place.pgno == 1 {
            let (h, b) = head.split_at_mut(24);
            (Some(&mut h[..]), b)
        } else {
            (None, head)
        };
        let (ad, ad_len) = associated_data(
            &desc,
            &keys.ident.salt,
            place,
            header.as_ref().map(|h| &h[16..24]),
        );
        if !st
            .ciphers
            .for_decrypt(keys, &n1)
            .open(&nonce, &ad[..ad_len], body, &tag)
        {
            return Err(Fail::Auth(format!(
                "the {} page does not authenticate (damaged, or moved from another place \
                 or file)",
                place.class.name()
            )));
        }
        if let Some(h) = header {
            h[..16].copy_from_slice(MAGIC);
        }
        slice.fill(0);
        self.decrypted.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Masks (or unmasks: the same XOR) a checksum SQLite computed over
    /// plaintext.
    pub(crate) fn mask<const N: usize>(
        &self,
        st: &mut PageState,
        ctx: &PageCtx<'_>,
        sum: &mut [u8; N],
    ) -> Result<()> {
        let keys = self.trusted(st)?;
        let binding = self.binding(st, &keys, ctx, true)?;
        let m = keys.mask(st.class, ctx.pgno, ctx.offset, &binding);
        for (s, m) in sum.iter_mut().zip(m) {
            *s ^= m;
        }
        Ok(())
    }
}
