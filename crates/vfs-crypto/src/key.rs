//! Keys: raw 256-bit keys, passphrases, and where a file gets its key from.

use std::fmt;

use rand::RngCore;
use vfs_core::{Error, OpenName, Result, codes};
use zeroize::{Zeroize, Zeroizing};

/// A raw 256-bit encryption key, zeroized when dropped.
///
/// ```
/// use vfs_crypto::Key;
/// let key = Key::from_hex("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f")?;
/// assert_eq!(key.to_hex().as_str(), "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
/// assert!(Key::from_hex("00").is_err());
/// # Ok::<(), vfs_core::Error>(())
/// ```
#[derive(Clone)]
pub struct Key(Zeroizing<[u8; 32]>);

impl Key {
    /// A key made of these 32 bytes (moved in; zeroize the source if it was
    /// a copy).
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        Key(Zeroizing::new(bytes))
    }

    /// A key from 64 hexadecimal digits (either case), as the `hexkey` URI
    /// parameter takes it. `SQLITE_MISUSE` for anything else.
    pub fn from_hex(hex: &str) -> Result<Key> {
        parse_hex(hex.trim())
            .map(Key)
            .map_err(|why| Error::new(codes::SQLITE_MISUSE, why))
    }

    /// A fresh random key from the operating system's generator.
    pub fn generate() -> Key {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::rngs::OsRng.fill_bytes(&mut *k);
        Key(k)
    }

    /// The key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The key as 64 lower-case hex digits (for a `hexkey=` URI parameter),
    /// zeroized when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = Zeroizing::new(String::with_capacity(64));
        for b in self.0.iter() {
            s.push(char::from(DIGITS[usize::from(b >> 4)]));
            s.push(char::from(DIGITS[usize::from(b & 15)]));
        }
        s
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(<redacted>)")
    }
}

/// 64 hex digits → 32 bytes.
fn parse_hex(hex: &str) -> std::result::Result<Zeroizing<[u8; 32]>, String> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return Err(format!(
            "a hex key must be 64 hexadecimal digits (256 bits), not {} characters",
            digits.len()
        ));
    }
    let nibble = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        match (nibble(pair[0]), nibble(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = hi << 4 | lo,
            _ => return Err("a hex key may contain only the digits 0-9, a-f and A-F".into()),
        }
    }
    Ok(out)
}

/// Argon2id cost parameters for passphrase keys (`key=` / `textkey=`).
///
/// They are recorded in every page's descriptor (see `docs/formats.md`),
/// so a database keeps the parameters it was created with and a VFS built
/// with other defaults still opens it. Bounds of the format: memory
/// 2^3..=2^20 KiB (8 KiB to 1 GiB), 1..=16 passes, 1..=8 lanes; within
/// them, a VFS refuses what exceeds its
/// [`kdf_limit`](crate::CryptoOptions::kdf_limit) ([`KdfParams::LIMIT`] by
/// default). Either refusal is `SQLITE_NOTADB`, before any work is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct KdfParams {
    /// Memory cost as a power of two of KiB (16: 64 MiB).
    pub memory_kib_log2: u8,
    /// Passes over the memory (Argon2's `t`).
    pub iterations: u8,
    /// Lanes (Argon2's `p`), computed one after the other here.
    pub lanes: u8,
}

impl KdfParams {
    /// The default for new passphrase databases: 64 MiB, 3 passes, 1 lane
    /// (RFC 9106's second recommended setting, with one lane): about 0.1 to
    /// 0.3 s per key derivation on a current CPU in an optimised build.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib_log2: 16,
        iterations: 3,
        lanes: 1,
    };

    /// The default cap on what a database may ask for
    /// ([`CryptoOptions::kdf_limit`](crate::CryptoOptions::kdf_limit)):
    /// 256 MiB, 8 passes, 8 lanes, four times the default's memory and
    /// about ten times its work (a few seconds at most in an optimised
    /// build), where the format allows 1 GiB and 16 passes.
    pub const LIMIT: KdfParams = KdfParams {
        memory_kib_log2: 18,
        iterations: 8,
        lanes: 8,
    };

    /// Cheap parameters (1 MiB, 1 pass) for tests and throwaway data only.
    pub const FAST_INSECURE: KdfParams = KdfParams {
        memory_kib_log2: 10,
        iterations: 1,
        lanes: 1,
    };

    /// Whether a file may ask for these parameters (bounds in the type's
    /// docs).
    pub fn in_bounds(self) -> bool {
        (3..=20).contains(&self.memory_kib_log2)
            && (1..=16).contains(&self.iterations)
            && (1..=8).contains(&self.lanes)
            && (1u32 << self.memory_kib_log2) >= 8 * u32::from(self.lanes)
    }

    /// Memory cost in KiB.
    pub fn memory_kib(self) -> u32 {
        1u32 << self.memory_kib_log2
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams::DEFAULT
    }
}

/// Runs Argon2id (version 0x13) with `params` over `passphrase` and `salt`.
pub(crate) fn argon2id(
    passphrase: &[u8],
    salt: &[u8; 16],
    params: KdfParams,
) -> std::result::Result<Zeroizing<[u8; 32]>, String> {
    let p = argon2::Params::new(
        params.memory_kib(),
        u32::from(params.iterations),
        u32::from(params.lanes),
        Some(32),
    )
    .map_err(|e| format!("invalid Argon2id parameters: {e}"))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, p);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase, salt, &mut *out)
        .map_err(|e| format!("Argon2id failed: {e}"))?;
    Ok(out)
}

/// Where a file's key comes from.
pub(crate) enum KeySource {
    /// A raw key (registration or `hexkey`).
    Raw {
        key: Zeroizing<[u8; 32]>,
        origin: &'static str,
    },
    /// A passphrase (`key` / `textkey`).
    Passphrase {
        text: Zeroizing<Vec<u8>>,
        origin: &'static str,
    },
    /// No key at all, or an unusable one: the reason, reported as
    /// `SQLITE_NOTADB` at the first page that needs the key.
    Missing(String),
}

impl KeySource {
    /// The key of a file being opened: URI parameters first (`hexkey`,
    /// `key`, `textkey`), then the registration key.
    pub(crate) fn from_name(name: &OpenName<'_>, registered: Option<&Key>) -> KeySource {
        // Read as bytes: a parameter that is present but not UTF-8 is an
        // unusable key, never an absent one (which would fall back to the
        // registration key).
        let hex = name.parameter_bytes("hexkey");
        let key = name.parameter_bytes("key");
        let text = name.parameter_bytes("textkey");
        let given = [hex.is_some(), key.is_some(), text.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if given > 1 {
            return KeySource::Missing(
                "the URI gives more than one of hexkey=, key= and textkey=: give one".into(),
            );
        }
        let (hex, key, text) = match (
            utf8_parameter(hex, "hexkey"),
            utf8_parameter(key, "key"),
            utf8_parameter(text, "textkey"),
        ) {
            (Ok(hex), Ok(key), Ok(text)) => (hex, key, text),
            (Err(why), _, _) | (_, Err(why), _) | (_, _, Err(why)) => {
                return KeySource::Missing(why);
            }
        };
        if let Some(hex) = hex {
            return match parse_hex(hex) {
                Ok(key) => KeySource::Raw {
                    key,
                    origin: "the hexkey URI parameter",
                },
                Err(why) => KeySource::Missing(format!("hexkey URI parameter: {why}")),
            };
        }
        if let Some((text, origin)) = key
            .map(|k| (k, "the key URI parameter"))
            .or(text.map(|t| (t, "the textkey URI parameter")))
        {
            if text.is_empty() {
                return KeySource::Missing(format!("{origin} is empty"));
            }
            return KeySource::Passphrase {
                text: Zeroizing::new(text.as_bytes().to_vec()),
                origin,
            };
        }
        match registered {
            Some(k) => KeySource::Raw {
                key: k.0.clone(),
                origin: "the key given at registration",
            },
            None => KeySource::Missing(
                "no encryption key: open the database with ?hexkey=<64 hex digits> or \
                 ?key=<passphrase> in its URI, or register the VFS with a key"
                    .into(),
            ),
        }
    }

    pub(crate) fn origin(&self) -> &'static str {
        match self {
            KeySource::Raw { origin, .. } | KeySource::Passphrase { origin, .. } => origin,
            KeySource::Missing(_) => "no key",
        }
    }
}

/// A key parameter's value as text; a value that is not UTF-8 is unusable.
fn utf8_parameter<'a>(
    value: Option<&'a [u8]>,
    param: &str,
) -> std::result::Result<Option<&'a str>, String> {
    value
        .map(|v| {
            std::str::from_utf8(v).map_err(|_| {
                format!("the {param} URI parameter is not UTF-8: give the key as UTF-8 text")
            })
        })
        .transpose()
}

impl Drop for KeySource {
    fn drop(&mut self) {
        if let KeySource::Missing(s) = self {
            s.zeroize();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_errors() {
        let k = Key::generate();
        let h = k.to_hex();
        assert_eq!(Key::from_hex(&h).unwrap().as_bytes(), k.as_bytes());
        assert_eq!(
            Key::from_hex(&h.to_uppercase()).unwrap().as_bytes(),
            k.as_bytes()
        );
        assert!(Key::from_hex(&h[..62]).is_err());
        let mut bad = h.to_string();
        bad.replace_range(0..1, "g");
        assert!(Key::from_hex(&bad).is_err());
    }

    #[test]
    fn default_params_are_in_bounds() {
        assert!(KdfParams::DEFAULT.in_bounds());
        assert!(KdfParams::LIMIT.in_bounds());
        assert!(KdfParams::FAST_INSECURE.in_bounds());
        assert!(
            !KdfParams {
                memory_kib_log2: 21,
                ..KdfParams::DEFAULT
            }
            .in_bounds()
        );
    }
}
