//! Algorithms, proposals in strongSwan's syntax, and proposal selection (RFC 7296 §2.7, §3.3).

use core::fmt;

use crate::wire::{self, protocol, Transform};

/// Transform types (RFC 7296 §3.3.2).
pub mod transform_type {
    pub const ENCR: u8 = 1;
    pub const PRF: u8 = 2;
    pub const INTEG: u8 = 3;
    pub const DH: u8 = 4;
    pub const ESN: u8 = 5;
}

/// Encryption algorithms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encr {
    AesCbc128,
    AesCbc256,
    AesGcm16_128,
    AesGcm16_256,
    ChaCha20Poly1305,
}

impl Encr {
    pub fn is_aead(self) -> bool {
        !matches!(self, Encr::AesCbc128 | Encr::AesCbc256)
    }
    /// Key octets including the 4-octet salt of AEAD transforms (RFC 5282 §7.1, RFC 7634 §2).
    pub fn key_len(self) -> usize {
        self.cipher_key_len() + if self.is_aead() { 4 } else { 0 }
    }
    pub fn cipher_key_len(self) -> usize {
        match self {
            Encr::AesCbc128 | Encr::AesGcm16_128 => 16,
            _ => 32,
        }
    }
    /// IV octets carried in SK payloads.
    pub fn iv_len(self) -> usize {
        if self.is_aead() {
            8
        } else {
            16
        }
    }
    fn id(self) -> (u16, Option<u16>) {
        match self {
            Encr::AesCbc128 => (12, Some(128)),
            Encr::AesCbc256 => (12, Some(256)),
            Encr::AesGcm16_128 => (20, Some(128)),
            Encr::AesGcm16_256 => (20, Some(256)),
            Encr::ChaCha20Poly1305 => (28, None),
        }
    }
    /// The IKEv2 transform identifier and key length.
    pub fn ikev2_id(self) -> u16 {
        self.id().0
    }
    pub fn key_bits(self) -> Option<u16> {
        self.id().1
    }
    pub fn name(self) -> &'static str {
        match self {
            Encr::AesCbc128 => "aes128",
            Encr::AesCbc256 => "aes256",
            Encr::AesGcm16_128 => "aes128gcm16",
            Encr::AesGcm16_256 => "aes256gcm16",
            Encr::ChaCha20Poly1305 => "chacha20poly1305",
        }
    }
    pub const ALL: [Encr; 5] = [
        Encr::AesCbc128,
        Encr::AesCbc256,
        Encr::AesGcm16_128,
        Encr::AesGcm16_256,
        Encr::ChaCha20Poly1305,
    ];
}

/// Pseudo-random functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Prf {
    HmacSha1,
    HmacSha256,
    HmacSha384,
    HmacSha512,
}

impl Prf {
    pub fn ikev2_id(self) -> u16 {
        match self {
            Prf::HmacSha1 => 2,
            Prf::HmacSha256 => 5,
            Prf::HmacSha384 => 6,
            Prf::HmacSha512 => 7,
        }
    }
    /// Output (and preferred key) length.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(self) -> usize {
        match self {
            Prf::HmacSha1 => 20,
            Prf::HmacSha256 => 32,
            Prf::HmacSha384 => 48,
            Prf::HmacSha512 => 64,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Prf::HmacSha1 => "prfsha1",
            Prf::HmacSha256 => "prfsha256",
            Prf::HmacSha384 => "prfsha384",
            Prf::HmacSha512 => "prfsha512",
        }
    }
    pub const ALL: [Prf; 4] = [
        Prf::HmacSha1,
        Prf::HmacSha256,
        Prf::HmacSha384,
        Prf::HmacSha512,
    ];
}

/// Integrity algorithms (truncated HMAC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Integ {
    HmacSha1_96,
    HmacSha256_128,
    HmacSha384_192,
    HmacSha512_256,
}

impl Integ {
    pub fn ikev2_id(self) -> u16 {
        match self {
            Integ::HmacSha1_96 => 2,
            Integ::HmacSha256_128 => 12,
            Integ::HmacSha384_192 => 13,
            Integ::HmacSha512_256 => 14,
        }
    }
    pub fn key_len(self) -> usize {
        match self {
            Integ::HmacSha1_96 => 20,
            Integ::HmacSha256_128 => 32,
            Integ::HmacSha384_192 => 48,
            Integ::HmacSha512_256 => 64,
        }
    }
    pub fn icv_len(self) -> usize {
        match self {
            Integ::HmacSha1_96 => 12,
            Integ::HmacSha256_128 => 16,
            Integ::HmacSha384_192 => 24,
            Integ::HmacSha512_256 => 32,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Integ::HmacSha1_96 => "sha1",
            Integ::HmacSha256_128 => "sha256",
            Integ::HmacSha384_192 => "sha384",
            Integ::HmacSha512_256 => "sha512",
        }
    }
    /// The PRF of the same hash (strongSwan's rule for proposals without an explicit PRF).
    pub fn matching_prf(self) -> Prf {
        match self {
            Integ::HmacSha1_96 => Prf::HmacSha1,
            Integ::HmacSha256_128 => Prf::HmacSha256,
            Integ::HmacSha384_192 => Prf::HmacSha384,
            Integ::HmacSha512_256 => Prf::HmacSha512,
        }
    }
    pub const ALL: [Integ; 4] = [
        Integ::HmacSha1_96,
        Integ::HmacSha256_128,
        Integ::HmacSha384_192,
        Integ::HmacSha512_256,
    ];
}

/// Diffie-Hellman groups (RFC 3526, RFC 2409, RFC 5903, RFC 8031).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DhGroup {
    Modp1024,
    Modp2048,
    Ecp256,
    Ecp384,
    Curve25519,
}

impl DhGroup {
    pub fn ikev2_id(self) -> u16 {
        match self {
            DhGroup::Modp1024 => 2,
            DhGroup::Modp2048 => 14,
            DhGroup::Ecp256 => 19,
            DhGroup::Ecp384 => 20,
            DhGroup::Curve25519 => 31,
        }
    }
    pub fn from_id(id: u16) -> Option<DhGroup> {
        DhGroup::ALL.into_iter().find(|g| g.ikev2_id() == id)
    }
    /// Octets of a public value in a KE payload.
    pub fn public_len(self) -> usize {
        match self {
            DhGroup::Modp1024 => 128,
            DhGroup::Modp2048 => 256,
            DhGroup::Ecp256 => 64,
            DhGroup::Ecp384 => 96,
            DhGroup::Curve25519 => 32,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            DhGroup::Modp1024 => "modp1024",
            DhGroup::Modp2048 => "modp2048",
            DhGroup::Ecp256 => "ecp256",
            DhGroup::Ecp384 => "ecp384",
            DhGroup::Curve25519 => "x25519",
        }
    }
    pub const ALL: [DhGroup; 5] = [
        DhGroup::Modp1024,
        DhGroup::Modp2048,
        DhGroup::Ecp256,
        DhGroup::Ecp384,
        DhGroup::Curve25519,
    ];
}

/// Whether a proposal is for the IKE SA or for an ESP Child SA.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ike,
    Esp,
}

/// One configured proposal: the acceptable algorithms of each type, in preference order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalSpec {
    pub kind: Kind,
    pub encr: Vec<Encr>,
    pub prf: Vec<Prf>,
    pub integ: Vec<Integ>,
    pub dh: Vec<DhGroup>,
    /// ESP only: ESN choices (false = no ESN).
    pub esn: Vec<bool>,
}

/// A proposal string strongSwan would not accept either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProposalError(pub String);

impl fmt::Display for ProposalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProposalError {}

impl ProposalSpec {
    /// Parses one proposal in strongSwan's syntax, e.g. `aes256gcm16-prfsha256-ecp256`,
    /// `aes256-sha256-modp2048`, `aes128gcm16-x25519` (ESP with PFS).
    pub fn parse(kind: Kind, s: &str) -> Result<ProposalSpec, ProposalError> {
        let mut p = ProposalSpec {
            kind,
            encr: vec![],
            prf: vec![],
            integ: vec![],
            dh: vec![],
            esn: vec![],
        };
        for tok in s.trim().split('-') {
            let t = tok.to_ascii_lowercase();
            match t.as_str() {
                "aes" | "aes128" => p.encr.push(Encr::AesCbc128),
                "aes256" => p.encr.push(Encr::AesCbc256),
                "aes128gcm16" | "aes128gcm128" | "aes128gcm" => p.encr.push(Encr::AesGcm16_128),
                "aes256gcm16" | "aes256gcm128" | "aes256gcm" => p.encr.push(Encr::AesGcm16_256),
                "chacha20poly1305" => p.encr.push(Encr::ChaCha20Poly1305),
                "sha" | "sha1" => p.integ.push(Integ::HmacSha1_96),
                "sha256" | "sha2_256" => p.integ.push(Integ::HmacSha256_128),
                "sha384" | "sha2_384" => p.integ.push(Integ::HmacSha384_192),
                "sha512" | "sha2_512" => p.integ.push(Integ::HmacSha512_256),
                "prfsha1" => p.prf.push(Prf::HmacSha1),
                "prfsha256" => p.prf.push(Prf::HmacSha256),
                "prfsha384" => p.prf.push(Prf::HmacSha384),
                "prfsha512" => p.prf.push(Prf::HmacSha512),
                "modp1024" => p.dh.push(DhGroup::Modp1024),
                "modp2048" => p.dh.push(DhGroup::Modp2048),
                "ecp256" => p.dh.push(DhGroup::Ecp256),
                "ecp384" => p.dh.push(DhGroup::Ecp384),
                "x25519" | "curve25519" => p.dh.push(DhGroup::Curve25519),
                "esn" => p.esn.push(true),
                "noesn" => p.esn.push(false),
                "" => return Err(ProposalError(format!("empty algorithm in proposal '{s}'"))),
                other => {
                    return Err(ProposalError(format!(
                        "unsupported algorithm '{other}' in proposal '{s}'"
                    )))
                }
            }
        }
        if p.encr.is_empty() {
            return Err(ProposalError(format!(
                "proposal '{s}' has no encryption algorithm"
            )));
        }
        let aead = p.encr.iter().filter(|e| e.is_aead()).count();
        if aead != 0 && aead != p.encr.len() {
            return Err(ProposalError(format!(
                "proposal '{s}' mixes AEAD and non-AEAD encryption: write two proposals"
            )));
        }
        if aead != 0 && !p.integ.is_empty() {
            return Err(ProposalError(format!(
                "proposal '{s}' has an integrity algorithm with an AEAD cipher"
            )));
        }
        if aead == 0 && p.integ.is_empty() {
            return Err(ProposalError(format!(
                "proposal '{s}' needs an integrity algorithm"
            )));
        }
        match kind {
            Kind::Ike => {
                if p.prf.is_empty() {
                    if aead != 0 {
                        return Err(ProposalError(format!(
                            "IKE proposal '{s}' with an AEAD cipher needs a PRF (e.g. prfsha256)"
                        )));
                    }
                    let mut prfs: Vec<Prf> = p.integ.iter().map(|i| i.matching_prf()).collect();
                    prfs.dedup();
                    p.prf = prfs;
                }
                if p.dh.is_empty() {
                    return Err(ProposalError(format!(
                        "IKE proposal '{s}' needs a Diffie-Hellman group"
                    )));
                }
                if !p.esn.is_empty() {
                    return Err(ProposalError(format!(
                        "IKE proposal '{s}' cannot carry ESN"
                    )));
                }
            }
            Kind::Esp => {
                if !p.prf.is_empty() {
                    return Err(ProposalError(format!(
                        "ESP proposal '{s}' cannot carry a PRF"
                    )));
                }
                if p.esn.is_empty() {
                    p.esn.push(false);
                }
            }
        }
        Ok(p)
    }

    /// Parses a comma-separated list of proposals.
    pub fn parse_list(kind: Kind, s: &str) -> Result<Vec<ProposalSpec>, ProposalError> {
        s.split(',')
            .filter(|x| !x.trim().is_empty())
            .map(|x| ProposalSpec::parse(kind, x))
            .collect()
    }

    /// The same proposal without Diffie-Hellman groups (Child SAs of IKE_AUTH, §1.2).
    pub fn without_dh(&self) -> ProposalSpec {
        ProposalSpec {
            dh: vec![],
            ..self.clone()
        }
    }

    fn transforms(&self) -> Vec<Transform> {
        let mut t = Vec::new();
        for e in &self.encr {
            t.push(Transform {
                ty: transform_type::ENCR,
                id: e.ikev2_id(),
                key_len: e.key_bits(),
            });
        }
        for p in &self.prf {
            t.push(Transform {
                ty: transform_type::PRF,
                id: p.ikev2_id(),
                key_len: None,
            });
        }
        for i in &self.integ {
            t.push(Transform {
                ty: transform_type::INTEG,
                id: i.ikev2_id(),
                key_len: None,
            });
        }
        for d in &self.dh {
            t.push(Transform {
                ty: transform_type::DH,
                id: d.ikev2_id(),
                key_len: None,
            });
        }
        for e in &self.esn {
            t.push(Transform {
                ty: transform_type::ESN,
                id: u16::from(*e),
                key_len: None,
            });
        }
        t
    }

    /// The proposals of an SA payload.
    pub fn to_wire(specs: &[ProposalSpec], spi: &[u8]) -> Vec<wire::Proposal> {
        specs
            .iter()
            .enumerate()
            .map(|(i, s)| wire::Proposal {
                num: (i + 1) as u8,
                protocol: match s.kind {
                    Kind::Ike => protocol::IKE,
                    Kind::Esp => protocol::ESP,
                },
                spi: spi.to_vec(),
                transforms: s.transforms(),
            })
            .collect()
    }
}

impl fmt::Display for ProposalSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<&str> = self.encr.iter().map(|e| e.name()).collect();
        parts.extend(self.integ.iter().map(|i| i.name()));
        parts.extend(self.prf.iter().map(|p| p.name()));
        parts.extend(self.dh.iter().map(|d| d.name()));
        if self.kind == Kind::Esp && self.esn.contains(&true) {
            parts.push("esn");
        }
        f.write_str(&parts.join("-"))
    }
}

/// The algorithms chosen for an SA: one of each type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Suite {
    pub encr: Encr,
    /// IKE SAs only.
    pub prf: Option<Prf>,
    /// None for AEAD ciphers.
    pub integ: Option<Integ>,
    /// Always set for IKE SAs; for Child SAs, the PFS group if any.
    pub dh: Option<DhGroup>,
    pub esn: bool,
}

impl Suite {
    /// The suite as a one-proposal SA payload.
    pub fn to_wire(&self, kind: Kind, num: u8, spi: &[u8]) -> wire::Proposal {
        let spec = ProposalSpec {
            kind,
            encr: vec![self.encr],
            prf: self.prf.into_iter().collect(),
            integ: self.integ.into_iter().collect(),
            dh: self.dh.into_iter().collect(),
            esn: if kind == Kind::Esp {
                vec![self.esn]
            } else {
                vec![]
            },
        };
        let mut p = ProposalSpec::to_wire(&[spec], spi).remove(0);
        p.num = num;
        p
    }

    /// Octets of KEYMAT per direction of a Child SA with this suite: encryption key (with
    /// salt) then integrity key (RFC 7296 §2.17).
    pub fn child_keymat_len(&self) -> usize {
        self.encr.key_len() + self.integ.map_or(0, |i| i.key_len())
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.encr.name())?;
        if let Some(i) = self.integ {
            write!(f, "-{}", i.name())?;
        }
        // strongSwan's notation: the PRF is implied when it matches the integrity hash.
        if let Some(p) = self.prf {
            if self.integ.map(|i| i.matching_prf()) != Some(p) {
                write!(f, "-{}", p.name())?;
            }
        }
        if let Some(d) = self.dh {
            write!(f, "-{}", d.name())?;
        }
        if self.esn {
            f.write_str("-esn")?;
        }
        Ok(())
    }
}

fn encr_of(t: &Transform) -> Option<Encr> {
    Encr::ALL
        .into_iter()
        .find(|e| e.ikev2_id() == t.id && e.key_bits() == t.key_len)
}

/// The result of selecting a proposal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selected {
    /// Number of the peer's proposal that matched.
    pub num: u8,
    /// The peer's SPI in that proposal.
    pub spi: Vec<u8>,
    pub suite: Suite,
}

/// Picks the first of our proposals (in our order) that one of the peer's proposals (in
/// theirs) satisfies, and within it our most preferred algorithm of each type. A peer
/// proposal matches only if every transform type it carries is one we can agree on.
/// `ignore_dh` drops DH transforms on both sides (Child SAs created by IKE_AUTH).
pub fn select(
    ours: &[ProposalSpec],
    theirs: &[wire::Proposal],
    ignore_dh: bool,
) -> Option<Selected> {
    for spec in ours {
        let want_proto = match spec.kind {
            Kind::Ike => protocol::IKE,
            Kind::Esp => protocol::ESP,
        };
        for p in theirs {
            if p.protocol != want_proto {
                continue;
            }
            if let Some(suite) = match_one(spec, p, ignore_dh) {
                return Some(Selected {
                    num: p.num,
                    spi: p.spi.clone(),
                    suite,
                });
            }
        }
    }
    None
}

fn match_one(spec: &ProposalSpec, p: &wire::Proposal, ignore_dh: bool) -> Option<Suite> {
    use transform_type as tt;
    let has = |ty: u8| p.transforms.iter().any(|t| t.ty == ty);
    let ids = |ty: u8| p.transforms.iter().filter(move |t| t.ty == ty);
    // Transform types we do not know make the proposal unacceptable.
    if p.transforms
        .iter()
        .any(|t| !(tt::ENCR..=tt::ESN).contains(&t.ty))
    {
        return None;
    }
    let encr = spec
        .encr
        .iter()
        .copied()
        .find(|e| ids(tt::ENCR).any(|t| encr_of(t) == Some(*e)))?;
    let prf = if spec.kind == Kind::Ike {
        Some(
            spec.prf
                .iter()
                .copied()
                .find(|x| ids(tt::PRF).any(|t| t.id == x.ikev2_id()))?,
        )
    } else {
        if has(tt::PRF) {
            return None;
        }
        None
    };
    let integ = if encr.is_aead() {
        // RFC 5282 §8: an AEAD proposal carries no integrity transform (or INTEG NONE).
        if ids(tt::INTEG).any(|t| t.id != 0) {
            return None;
        }
        None
    } else {
        Some(
            spec.integ
                .iter()
                .copied()
                .find(|x| ids(tt::INTEG).any(|t| t.id == x.ikev2_id()))?,
        )
    };
    let their_dh: Vec<u16> = ids(tt::DH).map(|t| t.id).filter(|&i| i != 0).collect();
    let dh = if ignore_dh {
        None
    } else if spec.dh.is_empty() {
        if !their_dh.is_empty() && !ids(tt::DH).any(|t| t.id == 0) {
            return None;
        }
        None
    } else {
        let d = spec
            .dh
            .iter()
            .copied()
            .find(|x| their_dh.contains(&x.ikev2_id()));
        match d {
            Some(d) => Some(d),
            None => {
                // The peer offers "NONE" as an alternative and we insist on PFS: no match.
                return None;
            }
        }
    };
    if spec.kind == Kind::Ike && dh.is_none() {
        return None;
    }
    let esn = if spec.kind == Kind::Esp {
        if has(tt::ESN) {
            spec.esn
                .iter()
                .copied()
                .find(|x| ids(tt::ESN).any(|t| t.id == u16::from(*x)))?
        } else {
            false
        }
    } else {
        if has(tt::ESN) {
            return None;
        }
        false
    };
    Some(Suite {
        encr,
        prf,
        integ,
        dh,
        esn,
    })
}

/// Checks that a responder's answer is one proposal, one transform per type, and acceptable
/// to us.
pub fn check_response(
    ours: &[ProposalSpec],
    theirs: &[wire::Proposal],
    ignore_dh: bool,
) -> Option<Selected> {
    if theirs.len() != 1 {
        return None;
    }
    let p = &theirs[0];
    for ty in transform_type::ENCR..=transform_type::ESN {
        if p.transforms.iter().filter(|t| t.ty == ty).count() > 1 {
            return None;
        }
    }
    select(ours, theirs, ignore_dh)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_strongswan_strings() {
        let p = ProposalSpec::parse(Kind::Ike, "aes256gcm16-prfsha256-ecp256").unwrap();
        assert_eq!(p.encr, vec![Encr::AesGcm16_256]);
        assert_eq!(p.prf, vec![Prf::HmacSha256]);
        assert_eq!(p.dh, vec![DhGroup::Ecp256]);
        let p = ProposalSpec::parse(Kind::Ike, "aes256-sha1-modp1024").unwrap();
        assert_eq!(p.prf, vec![Prf::HmacSha1]);
        assert_eq!(p.integ, vec![Integ::HmacSha1_96]);
        let p = ProposalSpec::parse(Kind::Esp, "aes256-sha256").unwrap();
        assert_eq!(p.esn, vec![false]);
        assert!(ProposalSpec::parse(Kind::Ike, "aes256gcm16-ecp256").is_err());
        assert!(ProposalSpec::parse(Kind::Ike, "3des-sha1-modp1024").is_err());
        assert!(ProposalSpec::parse(Kind::Ike, "aes256-aes128gcm16-sha1-modp1024").is_err());
        assert_eq!(
            ProposalSpec::parse(Kind::Ike, "aes128gcm16-prfsha256-x25519")
                .unwrap()
                .to_string(),
            "aes128gcm16-prfsha256-x25519"
        );
    }

    #[test]
    fn selection_prefers_our_order_and_checks_types() {
        let ours = ProposalSpec::parse_list(
            Kind::Ike,
            "aes256gcm16-prfsha256-ecp256,aes256-sha256-modp2048",
        )
        .unwrap();
        let theirs = ProposalSpec::to_wire(
            &ProposalSpec::parse_list(
                Kind::Ike,
                "aes128-sha1-modp1024,aes256-sha256-modp2048-ecp256,aes256gcm16-prfsha256-ecp256",
            )
            .unwrap(),
            &[],
        );
        let s = select(&ours, &theirs, false).unwrap();
        assert_eq!(s.num, 3);
        assert_eq!(s.suite.to_string(), "aes256gcm16-prfsha256-ecp256");
        let only_cbc = &theirs[..2];
        let s = select(&ours, only_cbc, false).unwrap();
        assert_eq!(s.num, 2);
        assert_eq!(s.suite.dh, Some(DhGroup::Modp2048));
        assert!(select(&ours, &theirs[..1], false).is_none());
    }

    #[test]
    fn esp_pfs_and_ike_auth() {
        let ours = ProposalSpec::parse_list(Kind::Esp, "aes128gcm16-ecp256").unwrap();
        let theirs = ProposalSpec::to_wire(
            &ProposalSpec::parse_list(Kind::Esp, "aes128gcm16").unwrap(),
            &[1, 2, 3, 4],
        );
        assert!(select(&ours, &theirs, false).is_none());
        let s = select(&ours, &theirs, true).unwrap();
        assert_eq!(s.suite.dh, None);
        assert_eq!(s.spi, vec![1, 2, 3, 4]);
    }
}
