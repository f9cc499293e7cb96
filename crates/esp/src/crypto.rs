//! Thin wrappers over aws-lc-rs for the ESP transforms. Nothing here allocates per packet.

use aws_lc_rs::{aead, cipher, constant_time, hmac, iv::FixedLength};

use crate::suite::{EncrAlg, IntegAlg};

/// Largest ICV of any integrity algorithm (HMAC-SHA-512-256).
pub(crate) const MAX_ICV: usize = 32;

/// The key could not be loaded, or the crypto library refused an operation (wrong lengths:
/// callers check lengths first, so this does not happen in practice).
#[derive(Debug)]
pub(crate) struct BadKey;

/// Encryption side of a transform, sealing direction.
pub(crate) enum SealCipher {
    Aead {
        key: aead::LessSafeKey,
        salt: [u8; 4],
    },
    Cbc(Box<cipher::EncryptingKey>),
    Null,
}

/// Encryption side of a transform, opening direction.
pub(crate) enum OpenCipher {
    Aead {
        key: aead::LessSafeKey,
        salt: [u8; 4],
    },
    Cbc(Box<cipher::DecryptingKey>),
    Null,
}

fn aead_key(
    alg: EncrAlg,
    key: &[u8],
    salt: &[u8],
) -> Result<Option<(aead::LessSafeKey, [u8; 4])>, BadKey> {
    let a = match alg {
        EncrAlg::AesGcm128 => &aead::AES_128_GCM,
        EncrAlg::AesGcm256 => &aead::AES_256_GCM,
        EncrAlg::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        _ => return Ok(None),
    };
    let unbound = aead::UnboundKey::new(a, key).map_err(|_| BadKey)?;
    let salt: [u8; 4] = salt.try_into().map_err(|_| BadKey)?;
    Ok(Some((aead::LessSafeKey::new(unbound), salt)))
}

fn cbc_key(alg: EncrAlg, key: &[u8]) -> Result<Option<cipher::UnboundCipherKey>, BadKey> {
    let a = match alg {
        EncrAlg::AesCbc128 => &cipher::AES_128,
        EncrAlg::AesCbc256 => &cipher::AES_256,
        _ => return Ok(None),
    };
    cipher::UnboundCipherKey::new(a, key)
        .map(Some)
        .map_err(|_| BadKey)
}

impl SealCipher {
    pub(crate) fn new(alg: EncrAlg, key: &[u8], salt: &[u8]) -> Result<Self, BadKey> {
        if let Some((key, salt)) = aead_key(alg, key, salt)? {
            return Ok(SealCipher::Aead { key, salt });
        }
        match cbc_key(alg, key)? {
            Some(k) => Ok(SealCipher::Cbc(Box::new(
                cipher::EncryptingKey::cbc(k).map_err(|_| BadKey)?,
            ))),
            None => Ok(SealCipher::Null),
        }
    }
}

impl OpenCipher {
    pub(crate) fn new(alg: EncrAlg, key: &[u8], salt: &[u8]) -> Result<Self, BadKey> {
        if let Some((key, salt)) = aead_key(alg, key, salt)? {
            return Ok(OpenCipher::Aead { key, salt });
        }
        match cbc_key(alg, key)? {
            Some(k) => Ok(OpenCipher::Cbc(Box::new(
                cipher::DecryptingKey::cbc(k).map_err(|_| BadKey)?,
            ))),
            None => Ok(OpenCipher::Null),
        }
    }
}

/// 12-octet AEAD nonce: salt then the explicit IV (RFC 4106 §4, RFC 7634 §2).
pub(crate) fn aead_nonce(salt: &[u8; 4], iv: &[u8]) -> aead::Nonce {
    let mut n = [0u8; 12];
    n[..4].copy_from_slice(salt);
    n[4..].copy_from_slice(&iv[..8]);
    aead::Nonce::assume_unique_for_key(n)
}

/// AES-CBC encryption in place; `data` is a multiple of 16 octets.
pub(crate) fn cbc_encrypt(
    key: &cipher::EncryptingKey,
    iv: &[u8; 16],
    data: &mut [u8],
) -> Result<(), BadKey> {
    let ctx = cipher::EncryptionContext::Iv128(FixedLength::from(*iv));
    key.less_safe_encrypt(data, ctx)
        .map(|_| ())
        .map_err(|_| BadKey)
}

/// AES-CBC decryption in place; `data` is a multiple of 16 octets.
pub(crate) fn cbc_decrypt(
    key: &cipher::DecryptingKey,
    iv: &[u8; 16],
    data: &mut [u8],
) -> Result<(), BadKey> {
    let ctx = cipher::DecryptionContext::Iv128(FixedLength::from(*iv));
    key.decrypt(data, ctx).map(|_| ()).map_err(|_| BadKey)
}

/// A truncated-HMAC integrity transform.
pub(crate) struct Integrity {
    key: hmac::Key,
    icv_len: usize,
}

impl Integrity {
    /// Any key length is accepted (HMAC hashes long keys); SAs pass the RFC lengths.
    pub(crate) fn new(alg: IntegAlg, key: &[u8]) -> Self {
        let a = match alg {
            IntegAlg::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            IntegAlg::HmacSha256_128 => hmac::HMAC_SHA256,
            IntegAlg::HmacSha384_192 => hmac::HMAC_SHA384,
            IntegAlg::HmacSha512_256 => hmac::HMAC_SHA512,
        };
        Integrity {
            key: hmac::Key::new(a, key),
            icv_len: alg.icv_len(),
        }
    }

    pub(crate) fn icv_len(&self) -> usize {
        self.icv_len
    }

    /// HMAC over the concatenation of `parts`, truncated into `out` (`icv_len` octets).
    pub(crate) fn compute(&self, parts: &[&[u8]], out: &mut [u8]) {
        let mut ctx = hmac::Context::with_key(&self.key);
        for p in parts {
            ctx.update(p);
        }
        let tag = ctx.sign();
        out[..self.icv_len].copy_from_slice(&tag.as_ref()[..self.icv_len]);
    }

    /// Constant-time comparison of the computed ICV with `icv`.
    pub(crate) fn verify(&self, parts: &[&[u8]], icv: &[u8]) -> bool {
        let mut expected = [0u8; MAX_ICV];
        self.compute(parts, &mut expected);
        constant_time::verify_slices_are_equal(&expected[..self.icv_len], icv).is_ok()
    }
}
