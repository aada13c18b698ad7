//! The SQL a crypto database answers: `PRAGMA crypto_format`, and
//! SQLCipher's key pragmas refused with a pointer to the URI parameters.

use vfs_core::{Control, Error, FileControl, FileKind, Result, codes};
use vfs_page::FileStatus;

use crate::codec::PageState;

/// Handles the pragmas of a page-mapped file; `None` for anything else.
pub(crate) fn file_control(
    needed: usize,
    st: &mut PageState,
    file: &FileStatus<'_>,
    ctl: &mut FileControl<'_>,
) -> Option<Result<()>> {
    let Control::Pragma(mut p) = ctl.control() else {
        return None;
    };
    let name = p.name().to_ascii_lowercase();
    match name.as_str() {
        "crypto_format" if file.kind == FileKind::MainDb => {
            if p.value().is_some() {
                return Some(Err(Error::new(
                    codes::SQLITE_ERROR,
                    "crypto_format is read-only",
                )));
            }
            let ident = st.db.lock().trusted.as_ref().map(|k| k.ident.clone());
            let answer = match ident {
                Some(ident) if file.reserve.is_some_and(|r| r >= needed) => {
                    format!("xaes-256-gcm v{}, {}", ident.version, ident.kdf.describe())
                }
                _ => "none".to_owned(),
            };
            p.set_result(&answer);
            Some(Ok(()))
        }
        "key" | "rekey" | "hexkey" | "hexrekey" | "textkey" | "textrekey" => Some(Err(Error::new(
            codes::SQLITE_ERROR,
            format!(
                "PRAGMA {name} is not supported: vfs-crypto takes the key from the URI \
                     (?hexkey=... or ?key=...) or from the registration; to rekey, copy \
                     the database with vfs_crypto::rekey_database (VACUUM INTO a target \
                     URI with the new key)"
            ),
        ))),
        _ => None,
    }
}
