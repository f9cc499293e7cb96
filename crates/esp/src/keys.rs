//! Key material of one ESP SA, as IKE derives it from KEYMAT.

use core::fmt;

use zeroize::Zeroizing;

use crate::suite::EspSuite;

/// Why key material does not fit a suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyError {
    /// The encryption key (with salt) has the wrong length.
    EncrKeyLength { expected: usize, got: usize },
    /// The integrity key has the wrong length.
    IntegKeyLength { expected: usize, got: usize },
    /// The KEYMAT slice has the wrong length.
    KeymatLength { expected: usize, got: usize },
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::EncrKeyLength { expected, got } => {
                write!(f, "encryption key of {got} octets, expected {expected}")
            }
            KeyError::IntegKeyLength { expected, got } => {
                write!(f, "integrity key of {got} octets, expected {expected}")
            }
            KeyError::KeymatLength { expected, got } => {
                write!(f, "KEYMAT of {got} octets, expected {expected}")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// The keys of one ESP SA (one direction) and the suite they are for.
///
/// The bytes are wiped when the value is dropped, and `Debug` prints only their lengths.
///
/// Lengths ([`EspSuite::encr_key_len`], [`EspSuite::integ_key_len`]):
/// - AES-GCM-16: AES key (16 or 32 octets) then a 4-octet salt (RFC 4106 §8.1);
/// - ChaCha20-Poly1305: 32-octet key then a 4-octet salt (RFC 7634 §2);
/// - AES-CBC: 16 or 32 octets; NULL: none;
/// - HMAC-SHA1-96: 20; HMAC-SHA2-256-128: 32; -384-192: 48; -512-256: 64 (RFC 4868 §2.1.2).
#[derive(Clone)]
pub struct SaKeys {
    suite: EspSuite,
    encr: Zeroizing<Vec<u8>>,
    integ: Zeroizing<Vec<u8>>,
}

impl SaKeys {
    /// Keys given separately; `integ_key` is empty for AEAD suites.
    pub fn new(suite: EspSuite, encr_key: &[u8], integ_key: &[u8]) -> Result<Self, KeyError> {
        if encr_key.len() != suite.encr_key_len() {
            return Err(KeyError::EncrKeyLength {
                expected: suite.encr_key_len(),
                got: encr_key.len(),
            });
        }
        if integ_key.len() != suite.integ_key_len() {
            return Err(KeyError::IntegKeyLength {
                expected: suite.integ_key_len(),
                got: integ_key.len(),
            });
        }
        Ok(SaKeys {
            suite,
            encr: Zeroizing::new(encr_key.to_vec()),
            integ: Zeroizing::new(integ_key.to_vec()),
        })
    }

    /// Keys of one direction taken from exactly [`EspSuite::keymat_len`] octets of KEYMAT:
    /// encryption key first, then integrity key (RFC 7296 §2.17).
    pub fn from_keymat(suite: EspSuite, keymat: &[u8]) -> Result<Self, KeyError> {
        if keymat.len() != suite.keymat_len() {
            return Err(KeyError::KeymatLength {
                expected: suite.keymat_len(),
                got: keymat.len(),
            });
        }
        let (e, i) = keymat.split_at(suite.encr_key_len());
        SaKeys::new(suite, e, i)
    }

    /// Splits a Child SA's KEYMAT (RFC 7296 §2.17) into the keys of both directions: the first
    /// [`EspSuite::keymat_len`] octets protect traffic from the IKE initiator to the responder,
    /// the next as many the opposite direction. Returns `(initiator_to_responder,
    /// responder_to_initiator)`. `keymat` must be exactly twice `keymat_len` long.
    pub fn split_child_keymat(suite: EspSuite, keymat: &[u8]) -> Result<(Self, Self), KeyError> {
        let one = suite.keymat_len();
        if keymat.len() != 2 * one {
            return Err(KeyError::KeymatLength {
                expected: 2 * one,
                got: keymat.len(),
            });
        }
        let (i2r, r2i) = keymat.split_at(one);
        Ok((
            SaKeys::from_keymat(suite, i2r)?,
            SaKeys::from_keymat(suite, r2i)?,
        ))
    }

    /// The suite these keys are for.
    pub fn suite(&self) -> EspSuite {
        self.suite
    }

    /// Cipher key without the salt.
    pub(crate) fn cipher_key(&self) -> &[u8] {
        &self.encr[..self.suite.encr().cipher_key_len()]
    }

    /// AEAD salt (empty for other suites).
    pub(crate) fn salt(&self) -> &[u8] {
        &self.encr[self.suite.encr().cipher_key_len()..]
    }

    pub(crate) fn integ_key(&self) -> &[u8] {
        &self.integ
    }
}

impl fmt::Debug for SaKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaKeys")
            .field("suite", &self.suite)
            .field(
                "encr_key",
                &format_args!("<redacted, {} octets>", self.encr.len()),
            )
            .field(
                "integ_key",
                &format_args!("<redacted, {} octets>", self.integ.len()),
            )
            .finish()
    }
}
