//! Authentication with certificates (RFC 7296 §2.15 and §3.6–3.8): our signature over the
//! "signed octets" with an ECDSA key, and the check of the peer's — its certificate chain to
//! configured trust anchors (rustls-webpki), the binding of its IKE identity to that
//! certificate, and its AUTH signature, in the RFC 7427 "digital signature" form (method 14,
//! an AlgorithmIdentifier before the signature) or the RFC 4754 ECDSA forms (methods 9/10).
//!
//! Pure except for one thing: the ECDSA nonce of our signatures comes from aws-lc's own
//! random generator (aws-lc-rs exposes no deterministic ECDSA). Validity periods are checked
//! against a Unix time the caller passes in.

use crate::session::Identity;
use crate::wire::IdPayload;
use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};
use rustls_pki_types::{CertificateDer, ServerName, SignatureVerificationAlgorithm, UnixTime};
use std::fmt;
use std::time::Duration;
use webpki::aws_lc_rs as algs;

/// AUTH methods (RFC 7296 §3.8, RFC 4754, RFC 7427).
pub mod method {
    pub const RSA: u8 = 1;
    pub const PSK: u8 = 2;
    pub const ECDSA_256: u8 = 9;
    pub const ECDSA_384: u8 = 10;
    pub const ECDSA_521: u8 = 11;
    pub const DIGITAL_SIGNATURE: u8 = 14;
}

/// CERT / CERTREQ encoding of an X.509 certificate.
pub const X509_SIGNATURE: u8 = 4;

/// DER AlgorithmIdentifiers of the signatures RFC 7427 method 14 carries (RFC 7427 App. A).
mod alg_id {
    pub const ECDSA_SHA256: &[u8] = &[
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02,
    ];
    pub const ECDSA_SHA384: &[u8] = &[
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03,
    ];
    pub const ECDSA_SHA512: &[u8] = &[
        0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04,
    ];
    pub const RSA_SHA256: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b, 0x05, 0x00,
    ];
    pub const RSA_SHA384: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c, 0x05, 0x00,
    ];
    pub const RSA_SHA512: &[u8] = &[
        0x30, 0x0d, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d, 0x05, 0x00,
    ];
}

/// Hash algorithms of the SIGNATURE_HASH_ALGORITHMS notify (RFC 7427 §4): SHA2-256/384/512.
pub const SIGNATURE_HASHES: [u16; 3] = [2, 3, 4];

/// Wraps `content` in a DER SEQUENCE.
fn der_sequence(content: &[u8]) -> Vec<u8> {
    let mut out = vec![0x30];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = n.to_be_bytes();
        let skip = len.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// Our certificate chain and ECDSA P-256 key.
pub struct LocalCert {
    /// DER certificates, ours first, then any intermediates to send.
    chain: Vec<Vec<u8>>,
    key: EcdsaKeyPair,
    /// Our subject name (DER, with its SEQUENCE): the default ID_DER_ASN1_DN identity.
    subject: Vec<u8>,
}

impl fmt::Debug for LocalCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCert")
            .field("chain", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl LocalCert {
    /// `chain`: DER certificates, ours first; `pkcs8`: our ECDSA P-256 private key (PKCS#8
    /// DER). Refuses a key that does not belong to the first certificate.
    pub fn new(chain: Vec<Vec<u8>>, pkcs8: &[u8]) -> Result<LocalCert, String> {
        let first = chain.first().ok_or("no certificate")?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8)
            .map_err(|e| format!("not an ECDSA P-256 PKCS#8 key: {e}"))?;
        let der = CertificateDer::from(first.as_slice());
        let cert = webpki::EndEntityCert::try_from(&der)
            .map_err(|e| format!("certificate does not parse: {e}"))?;
        let spki = cert.subject_public_key_info();
        if !spki.as_ref().ends_with(key.public_key().as_ref()) {
            return Err("the private key does not match the certificate".into());
        }
        let subject = der_sequence(cert.subject());
        Ok(LocalCert {
            chain,
            key,
            subject,
        })
    }

    /// The certificate's subject as an IKE identity.
    pub fn identity(&self) -> Identity {
        Identity::Dn(self.subject.clone())
    }

    /// The DER certificates to send in CERT payloads.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// AUTH method and data over `octets`: RFC 7427 with ECDSA-SHA256 when the peer announced
    /// SHA2-256 in SIGNATURE_HASH_ALGORITHMS, else RFC 4754 ECDSA-256 (r ‖ s).
    pub fn sign(&self, octets: &[u8], rfc7427: bool) -> Result<(u8, Vec<u8>), String> {
        let sig = self
            .key
            .sign(&SystemRandom::new(), octets)
            .map_err(|_| "ECDSA signing failed".to_string())?;
        if rfc7427 {
            let mut out = vec![alg_id::ECDSA_SHA256.len() as u8];
            out.extend_from_slice(alg_id::ECDSA_SHA256);
            out.extend_from_slice(sig.as_ref());
            Ok((method::DIGITAL_SIGNATURE, out))
        } else {
            let fixed = der_to_fixed(sig.as_ref(), 32).ok_or("bad ECDSA signature encoding")?;
            Ok((method::ECDSA_256, fixed))
        }
    }
}

/// The CAs a peer's certificate must chain to.
pub struct TrustAnchors {
    cas: Vec<CertificateDer<'static>>,
    /// SHA-1 hashes of each CA's SubjectPublicKeyInfo, concatenated: the CERTREQ data.
    certreq: Vec<u8>,
}

impl fmt::Debug for TrustAnchors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TrustAnchors({} CAs)", self.cas.len())
    }
}

impl TrustAnchors {
    pub fn new(cas: Vec<Vec<u8>>) -> Result<TrustAnchors, String> {
        if cas.is_empty() {
            return Err("no CA certificate".into());
        }
        let mut certreq = Vec::new();
        let mut out = Vec::new();
        for der in cas {
            let der = CertificateDer::from(der);
            let cert = webpki::EndEntityCert::try_from(&der)
                .map_err(|e| format!("CA certificate does not parse: {e}"))?;
            let spki = cert.subject_public_key_info();
            certreq.extend_from_slice(
                digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, spki.as_ref()).as_ref(),
            );
            out.push(der);
        }
        Ok(TrustAnchors { cas: out, certreq })
    }

    /// CERTREQ payload data: which CAs we trust.
    pub fn certreq(&self) -> &[u8] {
        &self.certreq
    }

    /// Checks the peer: `certs` (DER, end entity first, from its CERT payloads) chain to our
    /// anchors at `unix_secs`, `id` names that certificate, and `auth` (method, data) is its
    /// signature over `octets`.
    pub fn verify(
        &self,
        certs: &[Vec<u8>],
        id: &IdPayload,
        auth: (u8, &[u8]),
        octets: &[u8],
        unix_secs: u64,
    ) -> Result<(), String> {
        let ee_der = CertificateDer::from(
            certs
                .first()
                .ok_or("the peer sent no certificate")?
                .as_slice(),
        );
        let ee = webpki::EndEntityCert::try_from(&ee_der)
            .map_err(|e| format!("peer certificate does not parse: {e}"))?;
        let anchors = self
            .cas
            .iter()
            .map(|c| webpki::anchor_from_trusted_cert(c).map_err(|e| format!("CA: {e}")))
            .collect::<Result<Vec<_>, String>>()?;
        let intermediates: Vec<CertificateDer<'_>> = certs[1..]
            .iter()
            .map(|c| CertificateDer::from(c.as_slice()))
            .collect();
        ee.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors,
            &intermediates,
            UnixTime::since_unix_epoch(Duration::from_secs(unix_secs)),
            AnyKeyUsage,
            None,
            None,
        )
        .map_err(|e| format!("peer certificate not trusted: {e}"))?;
        check_identity(&ee, id)?;
        let (m, data) = auth;
        let candidates: Vec<&dyn SignatureVerificationAlgorithm>;
        let sig: Vec<u8>;
        match m {
            method::DIGITAL_SIGNATURE => {
                let n = usize::from(*data.first().ok_or("empty AUTH data")?);
                let alg = data.get(1..1 + n).ok_or("truncated AlgorithmIdentifier")?;
                sig = data[1 + n..].to_vec();
                candidates = match alg {
                    a if a == alg_id::ECDSA_SHA256 => {
                        vec![algs::ECDSA_P256_SHA256, algs::ECDSA_P384_SHA256]
                    }
                    a if a == alg_id::ECDSA_SHA384 => {
                        vec![algs::ECDSA_P256_SHA384, algs::ECDSA_P384_SHA384]
                    }
                    a if a == alg_id::ECDSA_SHA512 => {
                        vec![algs::ECDSA_P256_SHA512, algs::ECDSA_P384_SHA512]
                    }
                    a if a == alg_id::RSA_SHA256 => vec![algs::RSA_PKCS1_2048_8192_SHA256],
                    a if a == alg_id::RSA_SHA384 => vec![algs::RSA_PKCS1_2048_8192_SHA384],
                    a if a == alg_id::RSA_SHA512 => vec![algs::RSA_PKCS1_2048_8192_SHA512],
                    _ => return Err("unsupported signature algorithm in AUTH".into()),
                };
            }
            method::ECDSA_256 => {
                sig = fixed_to_der(data, 32).ok_or("bad ECDSA-256 signature length")?;
                candidates = vec![algs::ECDSA_P256_SHA256];
            }
            method::ECDSA_384 => {
                sig = fixed_to_der(data, 48).ok_or("bad ECDSA-384 signature length")?;
                candidates = vec![algs::ECDSA_P384_SHA384];
            }
            method::PSK => {
                return Err("the peer used a pre-shared key, a certificate is required".into())
            }
            _ => return Err(format!("unsupported AUTH method {m}")),
        }
        if candidates
            .iter()
            .any(|alg| ee.verify_signature(*alg, octets, &sig).is_ok())
        {
            Ok(())
        } else {
            Err("the peer's AUTH signature does not verify".into())
        }
    }
}

/// IKE certificates need no particular extended key usage (RFC 4945 §5.1.3.12 lets peers
/// ignore it; strongSwan does not require one): any, or none, is accepted.
struct AnyKeyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyKeyUsage {
    fn validate(&self, iter: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        for oid in iter {
            oid?;
        }
        Ok(())
    }
}

/// The peer's IKE identity must name its certificate: the subject DN, or a DNS name / IP
/// address among its subjectAltNames.
fn check_identity(ee: &webpki::EndEntityCert<'_>, id: &IdPayload) -> Result<(), String> {
    let ok = match id.id_type {
        9 => dn_equal(&id.data, &der_sequence(ee.subject())),
        2 => {
            let name = std::str::from_utf8(&id.data).map_err(|_| "ID_FQDN is not UTF-8")?;
            ServerName::try_from(name.to_string())
                .ok()
                .is_some_and(|n| ee.verify_is_valid_for_subject_name(&n).is_ok())
        }
        1 | 5 => {
            let ip = match id.data.len() {
                4 => std::net::IpAddr::from(
                    <[u8; 4]>::try_from(id.data.as_slice()).unwrap_or_default(),
                ),
                16 => std::net::IpAddr::from(
                    <[u8; 16]>::try_from(id.data.as_slice()).unwrap_or_default(),
                ),
                _ => return Err("malformed ID_IPV4/ID_IPV6".into()),
            };
            ee.verify_is_valid_for_subject_name(&ServerName::IpAddress(ip.into()))
                .is_ok()
        }
        t => {
            return Err(format!(
                "identity type {t} cannot be checked against a certificate"
            ))
        }
    };
    if ok {
        Ok(())
    } else {
        Err("the peer's identity does not match its certificate".into())
    }
}

/// Whether two DER distinguished names name the same entity (RFC 5280 §7.1, simplified):
/// the same attributes in the same order, values compared as text whatever their string
/// type, case-insensitively and with runs of spaces folded. A peer may send its DN encoded
/// differently from its certificate (strongSwan encodes the configured `id` string itself:
/// UTF8String where OpenSSL wrote PrintableString).
pub fn dn_equal(a: &[u8], b: &[u8]) -> bool {
    let norm = |v: Vec<(Vec<u8>, String)>| -> Vec<(Vec<u8>, String)> {
        v.into_iter()
            .map(|(oid, t)| {
                let t = t.split_whitespace().collect::<Vec<_>>().join(" ");
                (oid, t.to_lowercase())
            })
            .collect()
    };
    match (dn_parts(a), dn_parts(b)) {
        (Some(x), Some(y)) => norm(x) == norm(y),
        _ => a == b,
    }
}

/// Short names of the usual DN attributes and their OIDs (the value bytes after 06 len).
const DN_ATTRS: &[(&str, &[u8])] = &[
    ("C", &[0x55, 0x04, 0x06]),
    ("ST", &[0x55, 0x04, 0x08]),
    ("L", &[0x55, 0x04, 0x07]),
    ("O", &[0x55, 0x04, 0x0a]),
    ("OU", &[0x55, 0x04, 0x0b]),
    ("CN", &[0x55, 0x04, 0x03]),
    ("SN", &[0x55, 0x04, 0x05]),
    (
        "DC",
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
    ),
    ("E", &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01]),
];

/// A DER DN as strongSwan writes it: `O=vnet, CN=gw` (None when it does not parse).
pub fn dn_to_string(der: &[u8]) -> Option<String> {
    let parts = dn_parts(der)?;
    Some(
        parts
            .iter()
            .map(|(oid, v)| {
                let name = DN_ATTRS
                    .iter()
                    .find(|(_, o)| *o == oid.as_slice())
                    .map_or_else(
                        || oid.iter().map(|b| format!("{b:02x}")).collect(),
                        |(n, _)| n.to_string(),
                    );
                format!("{name}={v}")
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Encodes `O=vnet, CN=gw` (C, ST, L, O, OU, CN, SN, DC, E; one per RDN; UTF8String values) as a
/// DER Name; None for an unknown attribute or a malformed part.
pub fn dn_from_str(s: &str) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    for part in s.split(',') {
        let (k, v) = part.split_once('=')?;
        let (k, v) = (k.trim(), v.trim());
        let oid = DN_ATTRS
            .iter()
            .find(|(n, _)| {
                n.eq_ignore_ascii_case(k) || (k.eq_ignore_ascii_case("emailAddress") && *n == "E")
            })?
            .1;
        let tlv = |tag: u8, content: &[u8]| -> Vec<u8> {
            let mut seq = der_sequence(content);
            seq[0] = tag;
            seq
        };
        let mut atv = tlv(0x06, oid);
        atv.extend(tlv(0x0c, v.as_bytes()));
        body.extend(tlv(0x31, &der_sequence(&atv)));
    }
    (!body.is_empty()).then(|| der_sequence(&body))
}

/// (attribute OID, text) of every attribute of a DER Name, in order.
fn dn_parts(der: &[u8]) -> Option<Vec<(Vec<u8>, String)>> {
    let (tag, mut rdns, rest) = der_tlv(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let mut out = Vec::new();
    while !rdns.is_empty() {
        let (tag, mut set, more) = der_tlv(rdns)?;
        if tag != 0x31 {
            return None;
        }
        while !set.is_empty() {
            let (tag, atv, next) = der_tlv(set)?;
            let (oid_tag, oid, value) = der_tlv(atv)?;
            let (vtag, v, end) = der_tlv(value)?;
            if tag != 0x30 || oid_tag != 6 || !end.is_empty() {
                return None;
            }
            let text = match vtag {
                0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8_lossy(v).into_owned(),
                0x1e => String::from_utf16_lossy(
                    &v.chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect::<Vec<_>>(),
                ),
                _ => v.iter().map(|b| format!("{b:02x}")).collect(),
            };
            out.push((oid.to_vec(), text));
            set = next;
        }
        rdns = more;
    }
    Some(out)
}

/// DER ECDSA-Sig-Value → r ‖ s, each `n` bytes.
fn der_to_fixed(der: &[u8], n: usize) -> Option<Vec<u8>> {
    let (tag, body, rest) = der_tlv(der)?;
    if tag != 0x30 || !rest.is_empty() {
        return None;
    }
    let (t1, r, rest) = der_tlv(body)?;
    let (t2, s, rest) = der_tlv(rest)?;
    if t1 != 2 || t2 != 2 || !rest.is_empty() {
        return None;
    }
    let mut out = vec![0u8; 2 * n];
    for (i, v) in [r, s].iter().enumerate() {
        let v = &v[v.iter().take_while(|b| **b == 0).count()..];
        if v.len() > n {
            return None;
        }
        out[i * n + n - v.len()..(i + 1) * n].copy_from_slice(v);
    }
    Some(out)
}

/// r ‖ s (each `n` bytes) → DER ECDSA-Sig-Value.
fn fixed_to_der(fixed: &[u8], n: usize) -> Option<Vec<u8>> {
    if fixed.len() != 2 * n {
        return None;
    }
    let mut body = Vec::with_capacity(2 * n + 8);
    for v in [&fixed[..n], &fixed[n..]] {
        let v = &v[v.iter().take_while(|b| **b == 0).count()..];
        let pad = v.first().is_some_and(|b| b & 0x80 != 0);
        let len = v.len() + usize::from(pad);
        body.push(0x02);
        body.push(len.max(1) as u8);
        if pad {
            body.push(0);
        }
        if v.is_empty() {
            body.push(0);
        }
        body.extend_from_slice(v);
    }
    Some(der_sequence(&body))
}

/// One DER TLV with a short or one/two-byte long length: (tag, value, rest).
fn der_tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&l0, b) = b.split_first()?;
    let (len, b) = match l0 {
        0..=0x7f => (usize::from(l0), b),
        0x81 => (usize::from(*b.first()?), &b[1..]),
        0x82 => (
            usize::from(u16::from_be_bytes([*b.first()?, *b.get(1)?])),
            b.get(2..)?,
        ),
        _ => return None,
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

#[cfg(test)]
mod tests;
