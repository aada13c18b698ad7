//! Nonce sessions: which AES-256-GCM key (derived from the XAES-256-GCM key
//! by the first half of the nonce) a handle encrypts and decrypts with.

use rand::RngCore;

use crate::derive::DbKeys;
use crate::gcm::{PageCipher, PageGcm};

/// Encryptions under one XAES-derived key before a handle draws a new
/// 96-bit key-derivation nonce: with random 96-bit GCM nonces, 2^24
/// messages per key collide with probability below 2^-49.
const SESSION_LIMIT: u32 = 1 << 24;

/// Derived keys a handle keeps for decryption.
const RECENT: usize = 4;

/// The AES-256-GCM instances a handle uses: XAES-256-GCM derives a key
/// from the first 12 bytes of each 24-byte nonce. A handle encrypts with
/// one random 12-byte prefix (its session) for up to [`SESSION_LIMIT`]
/// pages, so the key schedule runs once per session instead of once per
/// page; the stored nonce is still a 192-bit XAES-256-GCM nonce, decrypted
/// by any XAES-256-GCM implementation.
pub(crate) struct Ciphers {
    cipher: PageCipher,
    session: Option<Session>,
    recent: Vec<([u8; 12], PageGcm)>,
}

/// One encryption session: a random 12-byte prefix, the AES-256-GCM
/// context derived for it, and how many images it sealed. It may move to
/// another handle of the same database under the same keys
/// ([`Ciphers::take_session`], [`Ciphers::adopt_session`]): the count
/// moves with it, so the limit holds across handles.
pub(crate) struct Session {
    n1: [u8; 12],
    gcm: PageGcm,
    used: u32,
}

impl Ciphers {
    pub(crate) fn new(cipher: PageCipher) -> Ciphers {
        Ciphers {
            cipher,
            session: None,
            recent: Vec::new(),
        }
    }

    pub(crate) fn clear(&mut self) {
        self.session = None;
        self.recent.clear();
    }

    /// Whether an encryption session is open.
    pub(crate) fn has_session(&self) -> bool {
        self.session.is_some()
    }

    /// The encryption session, handed over (for the next handle of the
    /// database under the same keys).
    pub(crate) fn take_session(&mut self) -> Option<Session> {
        self.session.take()
    }

    /// Encrypts in `session` from now on (one another handle opened under
    /// the keys these ciphers serve).
    pub(crate) fn adopt_session(&mut self, session: Session) {
        self.session = Some(session);
    }

    /// The session's prefix and cipher, counting one more encryption.
    pub(crate) fn for_encrypt(&mut self, keys: &DbKeys) -> (&[u8; 12], &PageGcm) {
        if self
            .session
            .as_ref()
            .is_some_and(|s| s.used >= SESSION_LIMIT)
        {
            self.session = None;
        }
        let s = self.session.get_or_insert_with(|| {
            let mut n1 = [0u8; 12];
            rand::thread_rng().fill_bytes(&mut n1);
            Session {
                gcm: PageGcm::new(self.cipher, &keys.subkey(&n1)),
                n1,
                used: 0,
            }
        });
        s.used += 1;
        (&s.n1, &s.gcm)
    }

    /// The cipher for nonces starting with `n1`.
    pub(crate) fn for_decrypt(&mut self, keys: &DbKeys, n1: &[u8; 12]) -> &PageGcm {
        if let Some(s) = &self.session
            && s.n1 == *n1
        {
            return &s.gcm;
        }
        let at = match self.recent.iter().position(|(n, _)| n == n1) {
            Some(i) => i,
            None => {
                if self.recent.len() >= RECENT {
                    self.recent.remove(0);
                }
                self.recent
                    .push((*n1, PageGcm::new(self.cipher, &keys.subkey(n1))));
                self.recent.len() - 1
            }
        };
        &self.recent[at].1
    }
}
