//! `file:` URIs for SQLite: a path and parameters, percent-encoded so that
//! any path and any passphrase reach SQLite byte for byte.

use vfs_crypto::Secret;
use zeroize::Zeroizing;

/// Appends `bytes` percent-encoded: RFC 3986 unreserved characters (and
/// `/` in a path) stay as they are, everything else becomes `%HH`, which
/// SQLite decodes in both paths and parameter values.
fn encode(out: &mut String, bytes: &[u8], keep_slash: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        let plain = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/');
        if plain {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
}

/// The URI of the database at `path` on VFS `vfs`, with the key of
/// `secret` (`hexkey=` for a raw key, `key=` for a passphrase) and other
/// parameters. Zeroized when dropped, since it may hold a key.
///
/// ```
/// let uri = vfs_cli::uri::database("/data/my app.db", "v1", None, &[("mode", "ro")]);
/// assert_eq!(uri.as_str(), "file:/data/my%20app.db?vfs=v1&mode=ro");
/// ```
pub fn database(
    path: &str,
    vfs: &str,
    secret: Option<&Secret>,
    params: &[(&str, &str)],
) -> Zeroizing<String> {
    let mut uri = Zeroizing::new(String::with_capacity(path.len() + 128));
    uri.push_str("file:");
    encode(&mut uri, path.as_bytes(), true);
    uri.push_str("?vfs=");
    encode(&mut uri, vfs.as_bytes(), false);
    match secret {
        Some(Secret::Key(k)) => {
            uri.push_str("&hexkey=");
            uri.push_str(&k.to_hex());
        }
        Some(Secret::Passphrase(p)) => {
            uri.push_str("&key=");
            encode(&mut uri, p, false);
        }
        None => {}
    }
    for (name, value) in params {
        uri.push('&');
        encode(&mut uri, name.as_bytes(), false);
        uri.push('=');
        encode(&mut uri, value.as_bytes(), false);
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_characters_are_encoded() {
        let uri = database(
            "/a?b#c%d/é.db",
            "x",
            Some(&Secret::passphrase("p&q=r s")),
            &[],
        );
        assert_eq!(
            uri.as_str(),
            "file:/a%3Fb%23c%25d/%C3%A9.db?vfs=x&key=p%26q%3Dr%20s"
        );
    }

    #[test]
    fn sqlite_decodes_what_we_encode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("we?ird #name%.db");
        let uri = database(path.to_str().unwrap(), "unix", None, &[]);
        let conn = rusqlite::Connection::open_with_flags(
            uri.as_str(),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE
                | rusqlite::OpenFlags::SQLITE_OPEN_CREATE
                | rusqlite::OpenFlags::SQLITE_OPEN_URI,
        )
        .unwrap();
        conn.execute_batch("CREATE TABLE t(x)").unwrap();
        drop(conn);
        assert!(path.exists());
    }
}
