//! Temporary files (temp databases and journals, sorter files, statement
//! sub-journals, transient databases): no reserved bytes, so AES-256-CTR
//! under a key that lives only while the file is open.

use aes::Aes256;
use ctr::Ctr128BE;
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use rand::RngCore;
use vfs_core::{Error, Result, codes};
use vfs_page::StreamCtx;
use zeroize::Zeroizing;

/// The cipher of one temporary file.
pub(crate) struct TempCipher(Ctr128BE<Aes256>);

impl TempCipher {
    /// A cipher under a fresh random key.
    pub(crate) fn new() -> TempCipher {
        let mut key = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut *key);
        let iv = [0u8; 16];
        TempCipher(Ctr128BE::<Aes256>::new((&*key).into(), (&iv).into()))
    }

    /// AES-256-CTR, counter = offset / 16: length-preserving and
    /// byte-position-local, so encryption and decryption are the same.
    pub(crate) fn apply(&mut self, ctx: &StreamCtx<'_>, data: &mut [u8]) -> Result<()> {
        self.0.try_seek(ctx.offset).map_err(|_| {
            Error::new(
                codes::SQLITE_IOERR,
                format!("offset {} is beyond the stream cipher's range", ctx.offset),
            )
        })?;
        self.0.try_apply_keystream(data).map_err(|_| {
            Error::new(
                codes::SQLITE_IOERR,
                format!(
                    "range at offset {} is beyond the stream cipher's range",
                    ctx.offset
                ),
            )
        })
    }
}
