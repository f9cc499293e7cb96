//! ESP cipher suites: which transforms exist, their key, IV and ICV lengths, and
//! their IKEv2 transform identifiers (RFC 7296 §3.3.2, IANA "IKEv2 Parameters").

use core::fmt;

/// Encryption transform of an ESP SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncrAlg {
    /// AES-GCM with a 16-octet ICV and a 128-bit key (RFC 4106, `ENCR_AES_GCM_16` = 20,
    /// key length attribute 128). KEYMAT: 16-octet AES key followed by a 4-octet salt.
    AesGcm128,
    /// AES-GCM with a 16-octet ICV and a 256-bit key (RFC 4106, `ENCR_AES_GCM_16` = 20,
    /// key length attribute 256). KEYMAT: 32-octet AES key followed by a 4-octet salt.
    AesGcm256,
    /// ChaCha20-Poly1305 (RFC 7634, `ENCR_CHACHA20_POLY1305` = 28, no key length attribute).
    /// KEYMAT: 32-octet ChaCha20 key followed by a 4-octet salt.
    ChaCha20Poly1305,
    /// AES-CBC with a 128-bit key (RFC 3602, `ENCR_AES_CBC` = 12, key length 128).
    /// Needs an integrity algorithm. KEYMAT: 16-octet key.
    AesCbc128,
    /// AES-CBC with a 256-bit key (RFC 3602, `ENCR_AES_CBC` = 12, key length 256).
    /// Needs an integrity algorithm. KEYMAT: 32-octet key.
    AesCbc256,
    /// NULL encryption (RFC 2410, `ENCR_NULL` = 11): integrity only. Needs an integrity
    /// algorithm, and an SA accepts it only if its policy allows it
    /// ([`crate::SaConfig::allow_null_encryption`]).
    Null,
}

impl EncrAlg {
    /// All encryption transforms, for tests and tables.
    pub const ALL: [EncrAlg; 6] = [
        EncrAlg::AesGcm128,
        EncrAlg::AesGcm256,
        EncrAlg::ChaCha20Poly1305,
        EncrAlg::AesCbc128,
        EncrAlg::AesCbc256,
        EncrAlg::Null,
    ];

    /// Combined-mode (AEAD) transform: integrity comes with the cipher.
    pub const fn is_aead(self) -> bool {
        matches!(
            self,
            EncrAlg::AesGcm128 | EncrAlg::AesGcm256 | EncrAlg::ChaCha20Poly1305
        )
    }

    /// Octets of KEYMAT this transform takes (cipher key plus salt, RFC 4106 §8.1, RFC 7634 §2).
    pub const fn key_len(self) -> usize {
        self.cipher_key_len() + self.salt_len()
    }

    /// Octets of the cipher key proper (without the salt).
    pub const fn cipher_key_len(self) -> usize {
        match self {
            EncrAlg::AesGcm128 | EncrAlg::AesCbc128 => 16,
            EncrAlg::AesGcm256 | EncrAlg::ChaCha20Poly1305 | EncrAlg::AesCbc256 => 32,
            EncrAlg::Null => 0,
        }
    }

    /// Octets of salt taken from the end of this transform's KEYMAT (AEAD transforms only).
    pub const fn salt_len(self) -> usize {
        if self.is_aead() {
            4
        } else {
            0
        }
    }

    /// Octets of explicit IV carried in each packet.
    pub const fn iv_len(self) -> usize {
        match self {
            EncrAlg::AesGcm128 | EncrAlg::AesGcm256 | EncrAlg::ChaCha20Poly1305 => 8,
            EncrAlg::AesCbc128 | EncrAlg::AesCbc256 => 16,
            EncrAlg::Null => 0,
        }
    }

    /// Alignment of the encrypted part (payload, padding, pad length, next header): the cipher
    /// block size, at least 4 (RFC 4303 §2.4).
    pub const fn block_len(self) -> usize {
        match self {
            EncrAlg::AesCbc128 | EncrAlg::AesCbc256 => 16,
            _ => 4,
        }
    }

    /// ICV length of an AEAD transform (0 for the others, whose ICV comes from [`IntegAlg`]).
    pub const fn aead_icv_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            0
        }
    }

    /// IKEv2 Transform Type 1 identifier.
    pub const fn ikev2_id(self) -> u16 {
        match self {
            EncrAlg::AesGcm128 | EncrAlg::AesGcm256 => 20,
            EncrAlg::ChaCha20Poly1305 => 28,
            EncrAlg::AesCbc128 | EncrAlg::AesCbc256 => 12,
            EncrAlg::Null => 11,
        }
    }

    /// IKEv2 Key Length attribute (bits), where the transform carries one.
    pub const fn ikev2_key_bits(self) -> Option<u16> {
        match self {
            EncrAlg::AesGcm128 | EncrAlg::AesCbc128 => Some(128),
            EncrAlg::AesGcm256 | EncrAlg::AesCbc256 => Some(256),
            EncrAlg::ChaCha20Poly1305 | EncrAlg::Null => None,
        }
    }
}

/// Integrity transform of an ESP SA (used with AES-CBC and NULL encryption).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IntegAlg {
    /// HMAC-SHA1-96 (RFC 2404, `AUTH_HMAC_SHA1_96` = 2): 20-octet key, 12-octet ICV.
    HmacSha1_96,
    /// HMAC-SHA-256-128 (RFC 4868, `AUTH_HMAC_SHA2_256_128` = 12): 32-octet key, 16-octet ICV.
    HmacSha256_128,
    /// HMAC-SHA-384-192 (RFC 4868, `AUTH_HMAC_SHA2_384_192` = 13): 48-octet key, 24-octet ICV.
    HmacSha384_192,
    /// HMAC-SHA-512-256 (RFC 4868, `AUTH_HMAC_SHA2_512_256` = 14): 64-octet key, 32-octet ICV.
    HmacSha512_256,
}

impl IntegAlg {
    /// All integrity transforms.
    pub const ALL: [IntegAlg; 4] = [
        IntegAlg::HmacSha1_96,
        IntegAlg::HmacSha256_128,
        IntegAlg::HmacSha384_192,
        IntegAlg::HmacSha512_256,
    ];

    /// Octets of KEYMAT this transform takes (RFC 2404 §3, RFC 4868 §2.1.2).
    pub const fn key_len(self) -> usize {
        match self {
            IntegAlg::HmacSha1_96 => 20,
            IntegAlg::HmacSha256_128 => 32,
            IntegAlg::HmacSha384_192 => 48,
            IntegAlg::HmacSha512_256 => 64,
        }
    }

    /// Octets of (truncated) ICV in each packet.
    pub const fn icv_len(self) -> usize {
        match self {
            IntegAlg::HmacSha1_96 => 12,
            IntegAlg::HmacSha256_128 => 16,
            IntegAlg::HmacSha384_192 => 24,
            IntegAlg::HmacSha512_256 => 32,
        }
    }

    /// IKEv2 Transform Type 3 identifier.
    pub const fn ikev2_id(self) -> u16 {
        match self {
            IntegAlg::HmacSha1_96 => 2,
            IntegAlg::HmacSha256_128 => 12,
            IntegAlg::HmacSha384_192 => 13,
            IntegAlg::HmacSha512_256 => 14,
        }
    }

    fn from_ikev2_id(id: u16) -> Option<Self> {
        IntegAlg::ALL.into_iter().find(|a| a.ikev2_id() == id)
    }
}

/// Why a combination of transforms is not a usable ESP suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SuiteError {
    /// An AEAD cipher was combined with a separate integrity algorithm (RFC 8221 §2).
    AeadWithIntegrity,
    /// AES-CBC or NULL encryption without an integrity algorithm.
    IntegrityRequired,
    /// The IKEv2 encryption transform (and key length) is not implemented.
    UnsupportedEncryption { id: u16, key_bits: Option<u16> },
    /// The IKEv2 integrity transform is not implemented.
    UnsupportedIntegrity { id: u16 },
}

impl fmt::Display for SuiteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SuiteError::AeadWithIntegrity => {
                f.write_str("an AEAD cipher takes no separate integrity algorithm")
            }
            SuiteError::IntegrityRequired => {
                f.write_str("AES-CBC and NULL encryption need an integrity algorithm")
            }
            SuiteError::UnsupportedEncryption { id, key_bits } => {
                write!(
                    f,
                    "unsupported encryption transform {id} (key length {key_bits:?})"
                )
            }
            SuiteError::UnsupportedIntegrity { id } => {
                write!(f, "unsupported integrity transform {id}")
            }
        }
    }
}

impl std::error::Error for SuiteError {}

/// A valid pair of encryption and integrity transforms.
///
/// KEYMAT layout for one direction (RFC 7296 §2.17): the encryption key
/// ([`EncrAlg::key_len`] octets, salt last for AEAD) followed by the integrity key
/// ([`IntegAlg::key_len`] octets, none for AEAD). See [`crate::SaKeys`].
///
/// | suite | encryption KEYMAT | integrity KEYMAT | IV | ICV |
/// |---|---|---|---|---|
/// | AES-GCM-16-128 | 16 key + 4 salt | – | 8 | 16 |
/// | AES-GCM-16-256 | 32 key + 4 salt | – | 8 | 16 |
/// | ChaCha20-Poly1305 | 32 key + 4 salt | – | 8 | 16 |
/// | AES-CBC-128/256 + HMAC-SHA1-96 | 16/32 | 20 | 16 | 12 |
/// | AES-CBC-128/256 + HMAC-SHA2-256-128 | 16/32 | 32 | 16 | 16 |
/// | AES-CBC-128/256 + HMAC-SHA2-384-192 | 16/32 | 48 | 16 | 24 |
/// | AES-CBC-128/256 + HMAC-SHA2-512-256 | 16/32 | 64 | 16 | 32 |
/// | NULL + HMAC-… | 0 | as above | 0 | as above |
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct EspSuite {
    encr: EncrAlg,
    integ: Option<IntegAlg>,
}

impl EspSuite {
    /// AES-GCM-16 with a 128-bit key.
    pub const AES_GCM_128: EspSuite = EspSuite {
        encr: EncrAlg::AesGcm128,
        integ: None,
    };
    /// AES-GCM-16 with a 256-bit key.
    pub const AES_GCM_256: EspSuite = EspSuite {
        encr: EncrAlg::AesGcm256,
        integ: None,
    };
    /// ChaCha20-Poly1305.
    pub const CHACHA20_POLY1305: EspSuite = EspSuite {
        encr: EncrAlg::ChaCha20Poly1305,
        integ: None,
    };

    /// Checks the combination: AEAD ciphers take no integrity algorithm, the others need one.
    pub const fn new(encr: EncrAlg, integ: Option<IntegAlg>) -> Result<Self, SuiteError> {
        match (encr.is_aead(), integ) {
            (true, Some(_)) => Err(SuiteError::AeadWithIntegrity),
            (false, None) => Err(SuiteError::IntegrityRequired),
            _ => Ok(EspSuite { encr, integ }),
        }
    }

    /// Builds a suite from IKEv2 transform identifiers: encryption transform ID with its Key
    /// Length attribute (bits), and the integrity transform ID (`None` or `Some(0)` = NONE).
    pub fn from_ikev2(
        encr_id: u16,
        key_bits: Option<u16>,
        integ_id: Option<u16>,
    ) -> Result<Self, SuiteError> {
        let encr = EncrAlg::ALL
            .into_iter()
            .find(|e| e.ikev2_id() == encr_id && e.ikev2_key_bits() == key_bits)
            .ok_or(SuiteError::UnsupportedEncryption {
                id: encr_id,
                key_bits,
            })?;
        let integ = match integ_id {
            None | Some(0) => None,
            Some(id) => {
                Some(IntegAlg::from_ikev2_id(id).ok_or(SuiteError::UnsupportedIntegrity { id })?)
            }
        };
        EspSuite::new(encr, integ)
    }

    /// Every valid suite this crate implements.
    pub fn all() -> impl Iterator<Item = EspSuite> {
        EncrAlg::ALL.into_iter().flat_map(|e| {
            let integs: &'static [Option<IntegAlg>] = if e.is_aead() {
                &[None]
            } else {
                &[
                    Some(IntegAlg::HmacSha1_96),
                    Some(IntegAlg::HmacSha256_128),
                    Some(IntegAlg::HmacSha384_192),
                    Some(IntegAlg::HmacSha512_256),
                ]
            };
            integs.iter().map(move |&i| EspSuite { encr: e, integ: i })
        })
    }

    /// The encryption transform.
    pub const fn encr(self) -> EncrAlg {
        self.encr
    }

    /// The integrity transform (`None` for AEAD ciphers).
    pub const fn integ(self) -> Option<IntegAlg> {
        self.integ
    }

    /// NULL encryption (integrity only).
    pub const fn is_null_encryption(self) -> bool {
        matches!(self.encr, EncrAlg::Null)
    }

    /// Octets of encryption KEYMAT (key plus salt).
    pub const fn encr_key_len(self) -> usize {
        self.encr.key_len()
    }

    /// Octets of integrity KEYMAT.
    pub const fn integ_key_len(self) -> usize {
        match self.integ {
            Some(i) => i.key_len(),
            None => 0,
        }
    }

    /// Octets of KEYMAT for one direction: encryption key then integrity key.
    pub const fn keymat_len(self) -> usize {
        self.encr_key_len() + self.integ_key_len()
    }

    /// Octets of explicit IV per packet.
    pub const fn iv_len(self) -> usize {
        self.encr.iv_len()
    }

    /// Octets of ICV per packet.
    pub const fn icv_len(self) -> usize {
        match self.integ {
            Some(i) => i.icv_len(),
            None => self.encr.aead_icv_len(),
        }
    }

    /// Alignment of the encrypted part.
    pub const fn block_len(self) -> usize {
        self.encr.block_len()
    }

    /// Octets between the start of the ESP packet and the payload: SPI, sequence number, IV.
    pub const fn header_len(self) -> usize {
        crate::ESP_HEADER_LEN + self.iv_len()
    }

    /// Octets of the ESP packet carrying `inner_len` octets of payload with minimal padding.
    pub const fn sealed_len(self, inner_len: usize) -> usize {
        let b = self.block_len();
        let body = (inner_len + 2).div_ceil(b) * b;
        self.header_len() + body + self.icv_len()
    }

    /// Largest overhead (header, padding, trailer, ICV) any payload length can get.
    pub const fn max_overhead(self) -> usize {
        self.header_len() + self.block_len() + 1 + self.icv_len()
    }
}

impl fmt::Display for EspSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = match self.encr {
            EncrAlg::AesGcm128 => "aes128gcm16",
            EncrAlg::AesGcm256 => "aes256gcm16",
            EncrAlg::ChaCha20Poly1305 => "chacha20poly1305",
            EncrAlg::AesCbc128 => "aes128",
            EncrAlg::AesCbc256 => "aes256",
            EncrAlg::Null => "null",
        };
        f.write_str(e)?;
        if let Some(i) = self.integ {
            f.write_str(match i {
                IntegAlg::HmacSha1_96 => "-sha1",
                IntegAlg::HmacSha256_128 => "-sha256",
                IntegAlg::HmacSha384_192 => "-sha384",
                IntegAlg::HmacSha512_256 => "-sha512",
            })?;
        }
        Ok(())
    }
}
