//! IKEv2 key schedule and message protection over aws-lc-rs: prf, prf+ (RFC 7296 §2.13),
//! SKEYSEED and SK_* (§2.14), Child SA KEYMAT (§2.17), PSK AUTH (§2.15), the Encrypted
//! payload with AES-CBC + HMAC (§3.14) and AEAD (RFC 5282, RFC 7634), Diffie-Hellman.

use core::fmt;

use aws_lc_rs::{aead, agreement, cipher, constant_time, hmac, iv::FixedLength};
use zeroize::Zeroizing;

use crate::modp;
use crate::proposal::{DhGroup, Encr, Integ, Prf, Suite};
use crate::Rng;

/// Secret octets, wiped on drop, never printed.
pub type Secret = Zeroizing<Vec<u8>>;

fn hmac_alg(prf: Prf) -> hmac::Algorithm {
    match prf {
        Prf::HmacSha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        Prf::HmacSha256 => hmac::HMAC_SHA256,
        Prf::HmacSha384 => hmac::HMAC_SHA384,
        Prf::HmacSha512 => hmac::HMAC_SHA512,
    }
}

/// prf(key, data) over the concatenation of `data`.
pub fn prf(alg: Prf, key: &[u8], data: &[&[u8]]) -> Secret {
    let k = hmac::Key::new(hmac_alg(alg), key);
    let mut ctx = hmac::Context::with_key(&k);
    for d in data {
        ctx.update(d);
    }
    Zeroizing::new(ctx.sign().as_ref().to_vec())
}

/// prf+(key, seed) truncated to `len` octets (RFC 7296 §2.13).
pub fn prf_plus(alg: Prf, key: &[u8], seed: &[u8], len: usize) -> Secret {
    let k = hmac::Key::new(hmac_alg(alg), key);
    let mut out = Zeroizing::new(Vec::with_capacity(len + alg.len()));
    let mut t: Secret = Zeroizing::new(Vec::new());
    let mut i: u8 = 1;
    while out.len() < len {
        let mut ctx = hmac::Context::with_key(&k);
        ctx.update(&t);
        ctx.update(seed);
        ctx.update(&[i]);
        t = Zeroizing::new(ctx.sign().as_ref().to_vec());
        out.extend_from_slice(&t);
        // 255 iterations is the RFC's ceiling; our lengths are far below it.
        i = i.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// The keys of an IKE SA (RFC 7296 §2.14).
#[derive(Clone)]
pub struct IkeKeys {
    pub sk_d: Secret,
    pub sk_ai: Secret,
    pub sk_ar: Secret,
    pub sk_ei: Secret,
    pub sk_er: Secret,
    pub sk_pi: Secret,
    pub sk_pr: Secret,
}

impl fmt::Debug for IkeKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IkeKeys(<redacted>)")
    }
}

/// SKEYSEED = prf(Ni | Nr, g^ir) for a new IKE SA.
pub fn skeyseed(alg: Prf, ni: &[u8], nr: &[u8], shared: &[u8]) -> Secret {
    let mut key = Zeroizing::new(Vec::with_capacity(ni.len() + nr.len()));
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    prf(alg, &key, &[shared])
}

/// SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr) when rekeying an IKE SA (§2.18).
pub fn skeyseed_rekey(
    alg_old: Prf,
    sk_d_old: &[u8],
    shared: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Secret {
    prf(alg_old, sk_d_old, &[shared, ni, nr])
}

/// {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr).
pub fn derive_ike_keys(
    suite: &Suite,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: u64,
    spi_r: u64,
) -> IkeKeys {
    let prf_alg = suite.prf.unwrap_or(Prf::HmacSha256);
    let pl = prf_alg.len();
    let al = suite.integ.map_or(0, |i| i.key_len());
    let el = suite.encr.key_len();
    let mut seed = Vec::with_capacity(ni.len() + nr.len() + 16);
    seed.extend_from_slice(ni);
    seed.extend_from_slice(nr);
    seed.extend_from_slice(&spi_i.to_be_bytes());
    seed.extend_from_slice(&spi_r.to_be_bytes());
    let km = prf_plus(prf_alg, skeyseed, &seed, 3 * pl + 2 * al + 2 * el);
    let mut at = 0;
    let mut take = |n: usize| {
        let v = Zeroizing::new(km[at..at + n].to_vec());
        at += n;
        v
    };
    IkeKeys {
        sk_d: take(pl),
        sk_ai: take(al),
        sk_ar: take(al),
        sk_ei: take(el),
        sk_er: take(el),
        sk_pi: take(pl),
        sk_pr: take(pl),
    }
}

/// KEYMAT = prf+(SK_d, [g^ir (new) |] Ni | Nr) for a Child SA: `2 * suite.child_keymat_len()`
/// octets, initiator-to-responder keys first (RFC 7296 §2.17).
pub fn child_keymat(
    prf_alg: Prf,
    sk_d: &[u8],
    shared: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    suite: &Suite,
) -> Secret {
    let mut seed = Zeroizing::new(Vec::new());
    if let Some(s) = shared {
        seed.extend_from_slice(s);
    }
    seed.extend_from_slice(ni);
    seed.extend_from_slice(nr);
    prf_plus(prf_alg, sk_d, &seed, 2 * suite.child_keymat_len())
}

/// The pad string of shared-key AUTH (RFC 7296 §2.15).
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// `AUTH = prf(prf(Shared Secret, "Key Pad for IKEv2"), <signed octets>)`: the octets a
/// signature would cover ([`signed_octets`]), MACed with the key.
pub fn psk_auth(
    alg: Prf,
    psk: &[u8],
    message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_rest: &[u8],
) -> Secret {
    let k = prf(alg, psk, &[KEY_PAD]);
    prf(
        alg,
        &k,
        &[&signed_octets(alg, message, peer_nonce, sk_p, id_rest)],
    )
}

/// The octets a signature AUTH covers (RFC 7296 §2.15): the sender's first message, the
/// peer's nonce, and prf(SK_p, the rest of the sender's ID payload).
pub fn signed_octets(
    alg: Prf,
    message: &[u8],
    peer_nonce: &[u8],
    sk_p: &[u8],
    id_rest: &[u8],
) -> Vec<u8> {
    let maced_id = prf(alg, sk_p, &[id_rest]);
    [message, peer_nonce, &maced_id].concat()
}

/// Constant-time equality of two secrets (AUTH values, cookies).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

// ---------------------------------------------------------------------------------------
// Encrypted payload

/// Why an Encrypted payload could not be opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// Too short, misaligned or with bad padding.
    Malformed,
    /// The ICV did not verify.
    Integrity,
}

#[allow(clippy::large_enum_variant)]
enum Cipher {
    Aead(aead::LessSafeKey, [u8; 4]),
    Cbc {
        enc: cipher::EncryptingKey,
        dec: cipher::DecryptingKey,
        integ: hmac::Key,
        icv: usize,
    },
}

/// One direction of SK payload protection.
pub struct SkCipher {
    encr: Encr,
    cipher: Cipher,
}

impl fmt::Debug for SkCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SkCipher({:?}, <redacted>)", self.encr)
    }
}

fn integ_alg(i: Integ) -> hmac::Algorithm {
    match i {
        Integ::HmacSha1_96 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        Integ::HmacSha256_128 => hmac::HMAC_SHA256,
        Integ::HmacSha384_192 => hmac::HMAC_SHA384,
        Integ::HmacSha512_256 => hmac::HMAC_SHA512,
    }
}

impl SkCipher {
    /// A cipher from SK_e (with salt for AEAD) and SK_a (empty for AEAD).
    pub fn new(suite: &Suite, sk_e: &[u8], sk_a: &[u8]) -> Option<SkCipher> {
        let encr = suite.encr;
        if sk_e.len() != encr.key_len() {
            return None;
        }
        let cipher = if encr.is_aead() {
            let alg = match encr {
                Encr::AesGcm16_128 => &aead::AES_128_GCM,
                Encr::AesGcm16_256 => &aead::AES_256_GCM,
                _ => &aead::CHACHA20_POLY1305,
            };
            let kl = encr.cipher_key_len();
            let key = aead::UnboundKey::new(alg, &sk_e[..kl]).ok()?;
            let mut salt = [0u8; 4];
            salt.copy_from_slice(&sk_e[kl..]);
            Cipher::Aead(aead::LessSafeKey::new(key), salt)
        } else {
            let integ = suite.integ?;
            let alg = if encr == Encr::AesCbc128 {
                &cipher::AES_128
            } else {
                &cipher::AES_256
            };
            let enc =
                cipher::EncryptingKey::cbc(cipher::UnboundCipherKey::new(alg, sk_e).ok()?).ok()?;
            let dec =
                cipher::DecryptingKey::cbc(cipher::UnboundCipherKey::new(alg, sk_e).ok()?).ok()?;
            Cipher::Cbc {
                enc,
                dec,
                integ: hmac::Key::new(integ_alg(integ), sk_a),
                icv: integ.icv_len(),
            }
        };
        Some(SkCipher { encr, cipher })
    }

    fn icv_len(&self) -> usize {
        match &self.cipher {
            Cipher::Aead(..) => 16,
            Cipher::Cbc { icv, .. } => *icv,
        }
    }

    fn block(&self) -> usize {
        if self.encr.is_aead() {
            1
        } else {
            16
        }
    }

    /// Octets that IV, padded plaintext and ICV take for `plain_len` octets of payloads.
    pub fn sealed_len(&self, plain_len: usize) -> usize {
        let b = self.block();
        let padded = (plain_len + 1).div_ceil(b) * b;
        self.encr.iv_len() + padded + self.icv_len()
    }

    /// Appends IV, encrypted payloads and ICV to `msg`, which already holds everything that
    /// precedes the IV with its final length fields. `iv_seed` makes the IV: AEAD IVs are
    /// the big-endian counter (unique per key), CBC IVs come from `rng`.
    pub fn seal(&self, msg: &mut Vec<u8>, plain: &[u8], counter: u64, rng: &mut dyn Rng) {
        let aad_end = msg.len();
        let b = self.block();
        let padded = (plain.len() + 1).div_ceil(b) * b;
        let pad = padded - plain.len() - 1;
        match &self.cipher {
            Cipher::Aead(key, salt) => {
                let iv = counter.to_be_bytes();
                msg.extend_from_slice(&iv);
                let body = msg.len();
                msg.extend_from_slice(plain);
                msg.resize(msg.len() + pad, 0);
                msg.push(pad as u8);
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(salt);
                nonce[4..].copy_from_slice(&iv);
                let (head, data) = msg.split_at_mut(body);
                let aad = aead::Aad::from(&head[..aad_end]);
                let tag = key
                    .seal_in_place_separate_tag(
                        aead::Nonce::assume_unique_for_key(nonce),
                        aad,
                        data,
                    )
                    .expect("AEAD seal with valid lengths");
                msg.extend_from_slice(tag.as_ref());
            }
            Cipher::Cbc {
                enc, integ, icv, ..
            } => {
                let mut iv = [0u8; 16];
                rng.fill(&mut iv);
                msg.extend_from_slice(&iv);
                let body = msg.len();
                msg.extend_from_slice(plain);
                msg.resize(msg.len() + pad, 0);
                msg.push(pad as u8);
                let ctx = cipher::EncryptionContext::Iv128(FixedLength::from(iv));
                enc.less_safe_encrypt(&mut msg[body..], ctx)
                    .expect("CBC encrypt of whole blocks");
                let tag = hmac::sign(integ, msg);
                msg.extend_from_slice(&tag.as_ref()[..*icv]);
            }
        }
    }

    /// Verifies and decrypts: `msg` is the whole message, `iv_at` the offset of the IV.
    /// Returns the payload octets (padding removed).
    pub fn open(&self, msg: &[u8], iv_at: usize) -> Result<Vec<u8>, OpenError> {
        let iv_len = self.encr.iv_len();
        let icv = self.icv_len();
        if msg.len() < iv_at + iv_len + icv + 1 {
            return Err(OpenError::Malformed);
        }
        let ct_end = msg.len() - icv;
        let mut data = match &self.cipher {
            Cipher::Aead(key, salt) => {
                let mut nonce = [0u8; 12];
                nonce[..4].copy_from_slice(salt);
                nonce[4..].copy_from_slice(&msg[iv_at..iv_at + 8]);
                let mut buf = msg[iv_at + iv_len..].to_vec();
                let aad = aead::Aad::from(&msg[..iv_at]);
                let n = key
                    .open_in_place(aead::Nonce::assume_unique_for_key(nonce), aad, &mut buf)
                    .map_err(|_| OpenError::Integrity)?
                    .len();
                buf.truncate(n);
                buf
            }
            Cipher::Cbc {
                dec, integ, icv, ..
            } => {
                let tag = hmac::sign(integ, &msg[..ct_end]);
                if !ct_eq(&tag.as_ref()[..*icv], &msg[ct_end..]) {
                    return Err(OpenError::Integrity);
                }
                let ct = &msg[iv_at + iv_len..ct_end];
                if ct.is_empty() || !ct.len().is_multiple_of(16) {
                    return Err(OpenError::Malformed);
                }
                let mut iv = [0u8; 16];
                iv.copy_from_slice(&msg[iv_at..iv_at + 16]);
                let mut buf = ct.to_vec();
                let ctx = cipher::DecryptionContext::Iv128(FixedLength::from(iv));
                dec.decrypt(&mut buf, ctx)
                    .map_err(|_| OpenError::Malformed)?;
                buf
            }
        };
        let pad = *data.last().ok_or(OpenError::Malformed)? as usize;
        if pad + 1 > data.len() {
            return Err(OpenError::Malformed);
        }
        data.truncate(data.len() - pad - 1);
        Ok(data)
    }
}

// ---------------------------------------------------------------------------------------
// Diffie-Hellman

/// Why a key exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DhError {
    /// The peer's public value has the wrong length or is not a valid element.
    BadPublic,
    /// The shared secret is degenerate (X25519 all-zero) or the library failed.
    Failed,
}

enum DhInner {
    Ec(agreement::PrivateKey),
    Modp(Secret),
}

/// Our half of a key exchange.
pub struct DhPrivate {
    group: DhGroup,
    inner: DhInner,
    public: Vec<u8>,
}

impl fmt::Debug for DhPrivate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DhPrivate({:?}, <redacted>)", self.group)
    }
}

impl DhPrivate {
    /// A fresh key pair, with private octets drawn from `rng`.
    pub fn generate(group: DhGroup, rng: &mut dyn Rng) -> DhPrivate {
        loop {
            let n = match group {
                DhGroup::Modp1024 | DhGroup::Modp2048 => modp::EXPONENT_LEN,
                DhGroup::Ecp256 | DhGroup::Curve25519 => 32,
                DhGroup::Ecp384 => 48,
            };
            let mut secret = Zeroizing::new(vec![0u8; n]);
            rng.fill(&mut secret);
            if let Some(k) = DhPrivate::from_private(group, &secret) {
                return k;
            }
        }
    }

    /// A key pair from given private octets (big-endian scalar for ECP and MODP exponents,
    /// RFC 7748 scalar for X25519). None if the scalar is out of range.
    pub fn from_private(group: DhGroup, secret: &[u8]) -> Option<DhPrivate> {
        match group {
            DhGroup::Modp1024 | DhGroup::Modp2048 => {
                if secret.iter().all(|&b| b == 0) {
                    return None;
                }
                let public = modp::public(group, secret)?;
                Some(DhPrivate {
                    group,
                    inner: DhInner::Modp(Zeroizing::new(secret.to_vec())),
                    public,
                })
            }
            _ => {
                let alg = match group {
                    DhGroup::Ecp256 => &agreement::ECDH_P256,
                    DhGroup::Ecp384 => &agreement::ECDH_P384,
                    _ => &agreement::X25519,
                };
                let k = agreement::PrivateKey::from_private_key(alg, secret).ok()?;
                let pk = k.compute_public_key().ok()?;
                let pk = pk.as_ref();
                // ECP public values in IKEv2 are x | y without the 0x04 prefix (RFC 5903 §7).
                let public = if group == DhGroup::Curve25519 {
                    pk.to_vec()
                } else {
                    pk.get(1..)?.to_vec()
                };
                Some(DhPrivate {
                    group,
                    inner: DhInner::Ec(k),
                    public,
                })
            }
        }
    }

    pub fn group(&self) -> DhGroup {
        self.group
    }

    /// Our public value, as it goes into a KE payload.
    pub fn public(&self) -> &[u8] {
        &self.public
    }

    /// g^ir from the peer's KE payload data.
    pub fn shared(&self, peer: &[u8]) -> Result<Secret, DhError> {
        if peer.len() != self.group.public_len() {
            return Err(DhError::BadPublic);
        }
        match &self.inner {
            DhInner::Modp(x) => modp::shared(self.group, x, peer).ok_or(DhError::BadPublic),
            DhInner::Ec(k) => {
                let (alg, bytes) = match self.group {
                    DhGroup::Ecp256 | DhGroup::Ecp384 => {
                        let mut b = Vec::with_capacity(peer.len() + 1);
                        b.push(4);
                        b.extend_from_slice(peer);
                        let alg = if self.group == DhGroup::Ecp256 {
                            &agreement::ECDH_P256
                        } else {
                            &agreement::ECDH_P384
                        };
                        (alg, b)
                    }
                    _ => (&agreement::X25519, peer.to_vec()),
                };
                let pk = agreement::UnparsedPublicKey::new(alg, bytes);
                let s = agreement::agree(k, pk, DhError::BadPublic, |s| {
                    Ok(Zeroizing::new(s.to_vec()))
                })?;
                if self.group == DhGroup::Curve25519 && s.iter().all(|&b| b == 0) {
                    return Err(DhError::Failed);
                }
                Ok(s)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // RFC 4231 test case 2 (HMAC-SHA-256 with key "Jefe").
    #[test]
    fn prf_hmac_sha256_rfc4231() {
        let out = prf(
            Prf::HmacSha256,
            b"Jefe",
            &[b"what do ya want ", b"for nothing?"],
        );
        assert_eq!(
            &out[..],
            &hex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")[..]
        );
    }

    // prf+ must equal T1 | T2 | ... with Tn = prf(K, Tn-1 | S | n).
    #[test]
    fn prf_plus_structure() {
        let k = b"key";
        let s = b"seed";
        let out = prf_plus(Prf::HmacSha1, k, s, 50);
        let t1 = prf(Prf::HmacSha1, k, &[s, &[1]]);
        let t2 = prf(Prf::HmacSha1, k, &[&t1, s, &[2]]);
        let t3 = prf(Prf::HmacSha1, k, &[&t2, s, &[3]]);
        let mut want = t1.to_vec();
        want.extend_from_slice(&t2);
        want.extend_from_slice(&t3);
        assert_eq!(&out[..], &want[..50]);
    }

    // RFC 5903 §8.1: ECP-256 (group 19).
    #[test]
    fn ecp256_rfc5903() {
        let i = hex("C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433");
        let gix = "DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180";
        let giy = "5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3";
        let r = hex("C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53");
        let grx = "D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63";
        let gry = "56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB";
        let girx = hex("D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE");
        let a = DhPrivate::from_private(DhGroup::Ecp256, &i).unwrap();
        let b = DhPrivate::from_private(DhGroup::Ecp256, &r).unwrap();
        assert_eq!(a.public(), &hex(&format!("{gix}{giy}"))[..]);
        assert_eq!(b.public(), &hex(&format!("{grx}{gry}"))[..]);
        assert_eq!(&a.shared(b.public()).unwrap()[..], &girx[..]);
        assert_eq!(&b.shared(a.public()).unwrap()[..], &girx[..]);
        // A point off the curve is refused.
        let mut bad = b.public().to_vec();
        bad[63] ^= 1;
        assert_eq!(a.shared(&bad).unwrap_err(), DhError::BadPublic);
    }

    // RFC 5903 §8.2: ECP-384 (group 20).
    #[test]
    fn ecp384_rfc5903() {
        let i = hex("099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655E35B538041E649EE3FAEF896783AB194");
        let r = hex("41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942E0308312916B8ED2960E4BD55A7448FC");
        let gir = hex("11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4D603135569B9E9D09CF5D4A270F59746");
        let gix = hex("667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6DE3AC808ACB4BDB4C88732AEE95F41AA9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C");
        let a = DhPrivate::from_private(DhGroup::Ecp384, &i).unwrap();
        let b = DhPrivate::from_private(DhGroup::Ecp384, &r).unwrap();
        assert_eq!(a.public(), &gix[..]);
        assert_eq!(&a.shared(b.public()).unwrap()[..], &gir[..]);
    }

    // RFC 7748 §6.1: X25519 Diffie-Hellman.
    #[test]
    fn x25519_rfc7748() {
        let a_priv = hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        let a_pub = hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
        let b_priv = hex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        let b_pub = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        let k = hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
        let a = DhPrivate::from_private(DhGroup::Curve25519, &a_priv).unwrap();
        let b = DhPrivate::from_private(DhGroup::Curve25519, &b_priv).unwrap();
        assert_eq!(a.public(), &a_pub[..]);
        assert_eq!(b.public(), &b_pub[..]);
        assert_eq!(&a.shared(&b_pub).unwrap()[..], &k[..]);
        assert_eq!(&b.shared(&a_pub).unwrap()[..], &k[..]);
        // The all-zero result of a low-order point is refused (RFC 8031 §2.2).
        assert!(a.shared(&[0u8; 32]).is_err());
    }

    #[test]
    fn sk_round_trip_all_ciphers() {
        struct Zero;
        impl Rng for Zero {
            fn fill(&mut self, b: &mut [u8]) {
                b.fill(0x5a);
            }
        }
        for s in [
            "aes256gcm16",
            "aes128gcm16",
            "chacha20poly1305",
            "aes128-sha1",
            "aes256-sha512",
        ] {
            let spec = crate::proposal::ProposalSpec::parse(crate::proposal::Kind::Esp, s).unwrap();
            let suite = Suite {
                encr: spec.encr[0],
                prf: None,
                integ: spec.integ.first().copied(),
                dh: None,
                esn: false,
            };
            let ke = vec![3u8; suite.encr.key_len()];
            let ka = vec![4u8; suite.integ.map_or(0, |i| i.key_len())];
            let c = SkCipher::new(&suite, &ke, &ka).unwrap();
            for len in [0usize, 1, 15, 16, 17, 100] {
                let plain = vec![0xabu8; len];
                let mut msg = vec![9u8; 32];
                c.seal(&mut msg, &plain, 7, &mut Zero);
                assert_eq!(msg.len(), 32 + c.sealed_len(len));
                assert_eq!(c.open(&msg, 32).unwrap(), plain);
                let mut bad = msg.clone();
                bad[3] ^= 1;
                assert_eq!(c.open(&bad, 32).unwrap_err(), OpenError::Integrity);
                let last = msg.len() - 1;
                let mut bad = msg.clone();
                bad[last] ^= 1;
                assert_eq!(c.open(&bad, 32).unwrap_err(), OpenError::Integrity);
            }
        }
    }
}
