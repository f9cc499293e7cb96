//! IKEv2 messages and payloads on the wire (RFC 7296 §3, RFC 7383 §2.5).
//!
//! Parsing is strict and total: every length is checked before it is used, nothing panics,
//! and every error says which rule the input broke. Emitting is the exact inverse: for any
//! value that [`parse_payloads`] returns, emitting it gives back the same octets.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Octets of the IKE header.
pub const HEADER_LEN: usize = 28;
/// Octets of a generic payload header.
pub const GENERIC_LEN: usize = 4;

/// Exchange types (RFC 7296 §3.1).
pub mod exchange {
    pub const IKE_SA_INIT: u8 = 34;
    pub const IKE_AUTH: u8 = 35;
    pub const CREATE_CHILD_SA: u8 = 36;
    pub const INFORMATIONAL: u8 = 37;
}

/// Header flags (RFC 7296 §3.1).
pub mod flags {
    pub const INITIATOR: u8 = 0x08;
    pub const VERSION: u8 = 0x10;
    pub const RESPONSE: u8 = 0x20;
}

/// Payload types (RFC 7296 §3.2, RFC 7383).
pub mod payload_type {
    pub const NONE: u8 = 0;
    pub const SA: u8 = 33;
    pub const KE: u8 = 34;
    pub const IDI: u8 = 35;
    pub const IDR: u8 = 36;
    pub const CERT: u8 = 37;
    pub const CERTREQ: u8 = 38;
    pub const AUTH: u8 = 39;
    pub const NONCE: u8 = 40;
    pub const NOTIFY: u8 = 41;
    pub const DELETE: u8 = 42;
    pub const VENDOR: u8 = 43;
    pub const TSI: u8 = 44;
    pub const TSR: u8 = 45;
    pub const SK: u8 = 46;
    pub const CP: u8 = 47;
    pub const EAP: u8 = 48;
    pub const SKF: u8 = 53;
}

/// Protocol identifiers (RFC 7296 §3.3.1).
pub mod protocol {
    pub const IKE: u8 = 1;
    pub const AH: u8 = 2;
    pub const ESP: u8 = 3;
}

/// Notify message types (RFC 7296 §3.10.1, RFC 7383, RFC 5685 …).
pub mod notify {
    pub const UNSUPPORTED_CRITICAL_PAYLOAD: u16 = 1;
    pub const INVALID_IKE_SPI: u16 = 4;
    pub const INVALID_MAJOR_VERSION: u16 = 5;
    pub const INVALID_SYNTAX: u16 = 7;
    pub const INVALID_MESSAGE_ID: u16 = 9;
    pub const INVALID_SPI: u16 = 11;
    pub const NO_PROPOSAL_CHOSEN: u16 = 14;
    pub const INVALID_KE_PAYLOAD: u16 = 17;
    pub const AUTHENTICATION_FAILED: u16 = 24;
    pub const SINGLE_PAIR_REQUIRED: u16 = 34;
    pub const NO_ADDITIONAL_SAS: u16 = 35;
    pub const INTERNAL_ADDRESS_FAILURE: u16 = 36;
    pub const FAILED_CP_REQUIRED: u16 = 37;
    pub const TS_UNACCEPTABLE: u16 = 38;
    pub const INVALID_SELECTORS: u16 = 39;
    pub const TEMPORARY_FAILURE: u16 = 43;
    pub const CHILD_SA_NOT_FOUND: u16 = 44;
    pub const INITIAL_CONTACT: u16 = 16384;
    pub const SET_WINDOW_SIZE: u16 = 16385;
    pub const ADDITIONAL_TS_POSSIBLE: u16 = 16386;
    pub const NAT_DETECTION_SOURCE_IP: u16 = 16388;
    pub const NAT_DETECTION_DESTINATION_IP: u16 = 16389;
    pub const COOKIE: u16 = 16390;
    pub const USE_TRANSPORT_MODE: u16 = 16391;
    pub const REKEY_SA: u16 = 16393;
    pub const ESP_TFC_PADDING_NOT_SUPPORTED: u16 = 16394;
    pub const NON_FIRST_FRAGMENTS_ALSO: u16 = 16395;
    pub const IKEV2_FRAGMENTATION_SUPPORTED: u16 = 16430;
    pub const SIGNATURE_HASH_ALGORITHMS: u16 = 16431;

    /// A readable name for logs and error messages.
    pub fn name(ty: u16) -> &'static str {
        match ty {
            UNSUPPORTED_CRITICAL_PAYLOAD => "UNSUPPORTED_CRITICAL_PAYLOAD",
            INVALID_IKE_SPI => "INVALID_IKE_SPI",
            INVALID_MAJOR_VERSION => "INVALID_MAJOR_VERSION",
            INVALID_SYNTAX => "INVALID_SYNTAX",
            INVALID_MESSAGE_ID => "INVALID_MESSAGE_ID",
            INVALID_SPI => "INVALID_SPI",
            NO_PROPOSAL_CHOSEN => "NO_PROPOSAL_CHOSEN",
            INVALID_KE_PAYLOAD => "INVALID_KE_PAYLOAD",
            AUTHENTICATION_FAILED => "AUTHENTICATION_FAILED",
            SINGLE_PAIR_REQUIRED => "SINGLE_PAIR_REQUIRED",
            NO_ADDITIONAL_SAS => "NO_ADDITIONAL_SAS",
            INTERNAL_ADDRESS_FAILURE => "INTERNAL_ADDRESS_FAILURE",
            FAILED_CP_REQUIRED => "FAILED_CP_REQUIRED",
            TS_UNACCEPTABLE => "TS_UNACCEPTABLE",
            INVALID_SELECTORS => "INVALID_SELECTORS",
            TEMPORARY_FAILURE => "TEMPORARY_FAILURE",
            CHILD_SA_NOT_FOUND => "CHILD_SA_NOT_FOUND",
            INITIAL_CONTACT => "INITIAL_CONTACT",
            SET_WINDOW_SIZE => "SET_WINDOW_SIZE",
            ADDITIONAL_TS_POSSIBLE => "ADDITIONAL_TS_POSSIBLE",
            NAT_DETECTION_SOURCE_IP => "NAT_DETECTION_SOURCE_IP",
            NAT_DETECTION_DESTINATION_IP => "NAT_DETECTION_DESTINATION_IP",
            COOKIE => "COOKIE",
            USE_TRANSPORT_MODE => "USE_TRANSPORT_MODE",
            REKEY_SA => "REKEY_SA",
            ESP_TFC_PADDING_NOT_SUPPORTED => "ESP_TFC_PADDING_NOT_SUPPORTED",
            NON_FIRST_FRAGMENTS_ALSO => "NON_FIRST_FRAGMENTS_ALSO",
            IKEV2_FRAGMENTATION_SUPPORTED => "IKEV2_FRAGMENTATION_SUPPORTED",
            SIGNATURE_HASH_ALGORITHMS => "SIGNATURE_HASH_ALGORITHMS",
            t if t < 16384 => "error notify",
            _ => "status notify",
        }
    }
}

/// Why octets are not a valid IKEv2 message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Fewer octets than the structure needs.
    Truncated(&'static str),
    /// A length field disagrees with the octets around it.
    BadLength(&'static str),
    /// Major version other than 2 (answer INVALID_MAJOR_VERSION).
    MajorVersion(u8),
    /// A payload type this implementation does not know, marked critical.
    UnsupportedCritical(u8),
    /// A field holds a value the RFC forbids.
    Invalid(&'static str),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Truncated(w) => write!(f, "truncated {w}"),
            ParseError::BadLength(w) => write!(f, "bad length in {w}"),
            ParseError::MajorVersion(v) => write!(f, "unsupported IKE major version {v}"),
            ParseError::UnsupportedCritical(t) => {
                write!(f, "unsupported critical payload type {t}")
            }
            ParseError::Invalid(w) => write!(f, "invalid {w}"),
        }
    }
}

impl std::error::Error for ParseError {}

impl ParseError {
    /// The error notify to answer a request with (RFC 7296 §2.21, §3.10.1).
    pub fn notify(&self) -> u16 {
        match self {
            ParseError::MajorVersion(_) => notify::INVALID_MAJOR_VERSION,
            ParseError::UnsupportedCritical(_) => notify::UNSUPPORTED_CRITICAL_PAYLOAD,
            _ => notify::INVALID_SYNTAX,
        }
    }
}

type Result<T> = core::result::Result<T, ParseError>;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

/// The fixed IKE header (RFC 7296 §3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub spi_i: u64,
    pub spi_r: u64,
    pub next_payload: u8,
    /// Major version in the high nibble, minor in the low.
    pub version: u8,
    pub exchange: u8,
    pub flags: u8,
    pub message_id: u32,
    pub length: u32,
}

impl Header {
    /// Reads the header of `msg` and checks it against the datagram length.
    pub fn parse(msg: &[u8]) -> Result<Header> {
        if msg.len() < HEADER_LEN {
            return Err(ParseError::Truncated("IKE header"));
        }
        let h = Header {
            spi_i: be64(msg, 0),
            spi_r: be64(msg, 8),
            next_payload: msg[16],
            version: msg[17],
            exchange: msg[18],
            flags: msg[19],
            message_id: be32(msg, 20),
            length: be32(msg, 24),
        };
        if h.version >> 4 != 2 {
            return Err(ParseError::MajorVersion(h.version >> 4));
        }
        if h.length as usize != msg.len() {
            return Err(ParseError::BadLength("IKE header"));
        }
        Ok(h)
    }

    /// Writes the header into the first 28 octets of `out`.
    pub fn write(&self, out: &mut [u8]) {
        out[0..8].copy_from_slice(&self.spi_i.to_be_bytes());
        out[8..16].copy_from_slice(&self.spi_r.to_be_bytes());
        out[16] = self.next_payload;
        out[17] = self.version;
        out[18] = self.exchange;
        out[19] = self.flags;
        out[20..24].copy_from_slice(&self.message_id.to_be_bytes());
        out[24..28].copy_from_slice(&self.length.to_be_bytes());
    }

    pub fn is_response(&self) -> bool {
        self.flags & flags::RESPONSE != 0
    }

    pub fn is_initiator(&self) -> bool {
        self.flags & flags::INITIATOR != 0
    }
}

/// A transform attribute (only Key Length, type 14, is defined for IKEv2).
pub const ATTR_KEY_LENGTH: u16 = 14;

/// One transform substructure (RFC 7296 §3.3.2).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transform {
    pub ty: u8,
    pub id: u16,
    /// The Key Length attribute, if present.
    pub key_len: Option<u16>,
}

/// One proposal substructure (RFC 7296 §3.3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub num: u8,
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

/// Identification payload body (RFC 7296 §3.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdPayload {
    pub id_type: u8,
    pub data: Vec<u8>,
}

impl IdPayload {
    /// The octets that the AUTH computation MACs (RestOfInitIDPayload, §2.15).
    pub fn rest_octets(&self) -> Vec<u8> {
        let mut v = vec![self.id_type, 0, 0, 0];
        v.extend_from_slice(&self.data);
        v
    }
}

/// Notify payload body (RFC 7296 §3.10).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub ty: u16,
    pub data: Vec<u8>,
}

impl Notify {
    pub fn new(ty: u16, data: Vec<u8>) -> Notify {
        Notify {
            protocol: 0,
            spi: Vec::new(),
            ty,
            data,
        }
    }
}

/// Delete payload body (RFC 7296 §3.11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delete {
    pub protocol: u8,
    pub spi_size: u8,
    pub spis: Vec<Vec<u8>>,
}

/// One traffic selector (RFC 7296 §3.13.1): an address range, a port range, a protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    /// IP protocol, 0 = any.
    pub protocol: u8,
    pub start_port: u16,
    pub end_port: u16,
    pub start: IpAddr,
    pub end: IpAddr,
}

pub const TS_IPV4_ADDR_RANGE: u8 = 7;
pub const TS_IPV6_ADDR_RANGE: u8 = 8;

/// One payload of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    Sa(Vec<Proposal>),
    Ke {
        group: u16,
        data: Vec<u8>,
    },
    IdI(IdPayload),
    IdR(IdPayload),
    Cert {
        encoding: u8,
        data: Vec<u8>,
    },
    CertReq {
        encoding: u8,
        data: Vec<u8>,
    },
    Auth {
        method: u8,
        data: Vec<u8>,
    },
    Nonce(Vec<u8>),
    Notify(Notify),
    Delete(Delete),
    Vendor(Vec<u8>),
    TsI(Vec<TrafficSelector>),
    TsR(Vec<TrafficSelector>),
    /// A payload kept as octets: CP, EAP, or an unknown non-critical type.
    Other {
        ty: u8,
        body: Vec<u8>,
    },
}

impl Payload {
    pub fn ty(&self) -> u8 {
        use payload_type as t;
        match self {
            Payload::Sa(_) => t::SA,
            Payload::Ke { .. } => t::KE,
            Payload::IdI(_) => t::IDI,
            Payload::IdR(_) => t::IDR,
            Payload::Cert { .. } => t::CERT,
            Payload::CertReq { .. } => t::CERTREQ,
            Payload::Auth { .. } => t::AUTH,
            Payload::Nonce(_) => t::NONCE,
            Payload::Notify(_) => t::NOTIFY,
            Payload::Delete(_) => t::DELETE,
            Payload::Vendor(_) => t::VENDOR,
            Payload::TsI(_) => t::TSI,
            Payload::TsR(_) => t::TSR,
            Payload::Other { ty, .. } => *ty,
        }
    }
}

/// Where the encrypted payload of a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encrypted {
    /// Type of the first payload inside.
    pub first: u8,
    /// Offset of the generic payload header of SK/SKF.
    pub start: usize,
    /// Offset of the IV (everything before it is authenticated data).
    pub body: usize,
    /// `Some((number, total))` for an SKF payload (RFC 7383).
    pub fragment: Option<(u16, u16)>,
}

/// A message as read from the wire, before decryption.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawMessage {
    pub header: Header,
    /// Payloads in the clear (before SK, or all of them in IKE_SA_INIT).
    pub payloads: Vec<Payload>,
    /// The SK or SKF payload, which must be the last one.
    pub encrypted: Option<Encrypted>,
}

/// Parses the header and the unencrypted payloads of a message. `msg` is exactly one IKE
/// message (no non-ESP marker).
pub fn parse_message(msg: &[u8]) -> Result<RawMessage> {
    let header = Header::parse(msg)?;
    let mut payloads = Vec::new();
    let mut next = header.next_payload;
    let mut at = HEADER_LEN;
    while next != payload_type::NONE {
        let (ty, body, after, nxt) = generic(msg, at, next)?;
        if ty == payload_type::SK || ty == payload_type::SKF {
            if after != msg.len() {
                return Err(ParseError::Invalid("payload after the Encrypted payload"));
            }
            let (fragment, body_at) = if ty == payload_type::SKF {
                if body.len() < 4 {
                    return Err(ParseError::Truncated("SKF payload"));
                }
                let num = be16(body, 0);
                let total = be16(body, 2);
                if num == 0 || total == 0 || num > total {
                    return Err(ParseError::Invalid("fragment number"));
                }
                (Some((num, total)), at + GENERIC_LEN + 4)
            } else {
                (None, at + GENERIC_LEN)
            };
            return Ok(RawMessage {
                header,
                payloads,
                encrypted: Some(Encrypted {
                    first: nxt,
                    start: at,
                    body: body_at,
                    fragment,
                }),
            });
        }
        if let Some(p) = parse_body(ty, body)? {
            payloads.push(p);
        }
        next = nxt;
        at = after;
    }
    if at != msg.len() {
        return Err(ParseError::BadLength(
            "trailing octets after the last payload",
        ));
    }
    Ok(RawMessage {
        header,
        payloads,
        encrypted: None,
    })
}

/// Reads a generic payload header at `at`: returns (type, body, offset after, next type).
fn generic(buf: &[u8], at: usize, ty: u8) -> Result<(u8, &[u8], usize, u8)> {
    if buf.len() < at + GENERIC_LEN {
        return Err(ParseError::Truncated("generic payload header"));
    }
    let next = buf[at];
    let critical = buf[at + 1] & 0x80 != 0;
    let len = be16(buf, at + 2) as usize;
    if len < GENERIC_LEN || at + len > buf.len() {
        return Err(ParseError::BadLength("generic payload header"));
    }
    if critical && !known_type(ty) {
        return Err(ParseError::UnsupportedCritical(ty));
    }
    Ok((ty, &buf[at + GENERIC_LEN..at + len], at + len, next))
}

fn known_type(ty: u8) -> bool {
    (payload_type::SA..=payload_type::EAP).contains(&ty) || ty == payload_type::SKF
}

/// Parses a chain of payloads (the plaintext of an SK payload) starting with type `first`.
pub fn parse_payloads(first: u8, buf: &[u8]) -> Result<Vec<Payload>> {
    let mut out = Vec::new();
    let mut next = first;
    let mut at = 0;
    while next != payload_type::NONE {
        let (ty, body, after, nxt) = generic(buf, at, next)?;
        if ty == payload_type::SK || ty == payload_type::SKF {
            return Err(ParseError::Invalid("nested Encrypted payload"));
        }
        if let Some(p) = parse_body(ty, body)? {
            out.push(p);
        }
        next = nxt;
        at = after;
    }
    if at != buf.len() {
        return Err(ParseError::BadLength(
            "trailing octets after the last payload",
        ));
    }
    Ok(out)
}

fn parse_body(ty: u8, b: &[u8]) -> Result<Option<Payload>> {
    use payload_type as t;
    Ok(Some(match ty {
        t::SA => Payload::Sa(parse_sa(b)?),
        t::KE => {
            if b.len() < 4 {
                return Err(ParseError::Truncated("KE payload"));
            }
            Payload::Ke {
                group: be16(b, 0),
                data: b[4..].to_vec(),
            }
        }
        t::IDI | t::IDR => {
            if b.len() < 4 {
                return Err(ParseError::Truncated("ID payload"));
            }
            let id = IdPayload {
                id_type: b[0],
                data: b[4..].to_vec(),
            };
            if ty == t::IDI {
                Payload::IdI(id)
            } else {
                Payload::IdR(id)
            }
        }
        t::CERT | t::CERTREQ => {
            if b.is_empty() {
                return Err(ParseError::Truncated("CERT payload"));
            }
            let (encoding, data) = (b[0], b[1..].to_vec());
            if ty == t::CERT {
                Payload::Cert { encoding, data }
            } else {
                Payload::CertReq { encoding, data }
            }
        }
        t::AUTH => {
            if b.len() < 4 {
                return Err(ParseError::Truncated("AUTH payload"));
            }
            Payload::Auth {
                method: b[0],
                data: b[4..].to_vec(),
            }
        }
        t::NONCE => {
            if b.len() < 16 || b.len() > 256 {
                return Err(ParseError::Invalid("nonce length (16..=256)"));
            }
            Payload::Nonce(b.to_vec())
        }
        t::NOTIFY => {
            if b.len() < 4 {
                return Err(ParseError::Truncated("Notify payload"));
            }
            let spi_size = b[1] as usize;
            if b.len() < 4 + spi_size {
                return Err(ParseError::Truncated("Notify SPI"));
            }
            Payload::Notify(Notify {
                protocol: b[0],
                spi: b[4..4 + spi_size].to_vec(),
                ty: be16(b, 2),
                data: b[4 + spi_size..].to_vec(),
            })
        }
        t::DELETE => {
            if b.len() < 4 {
                return Err(ParseError::Truncated("Delete payload"));
            }
            let spi_size = b[1] as usize;
            let n = be16(b, 2) as usize;
            if b.len() != 4 + spi_size * n {
                return Err(ParseError::BadLength("Delete payload"));
            }
            if spi_size == 0 && n != 0 {
                return Err(ParseError::Invalid("Delete payload SPI size"));
            }
            let spis = if spi_size == 0 {
                Vec::new()
            } else {
                b[4..].chunks(spi_size).map(<[u8]>::to_vec).collect()
            };
            Payload::Delete(Delete {
                protocol: b[0],
                spi_size: spi_size as u8,
                spis,
            })
        }
        t::VENDOR => Payload::Vendor(b.to_vec()),
        t::TSI | t::TSR => {
            let ts = parse_ts(b)?;
            if ty == t::TSI {
                Payload::TsI(ts)
            } else {
                Payload::TsR(ts)
            }
        }
        _ => Payload::Other {
            ty,
            body: b.to_vec(),
        },
    }))
}

fn parse_sa(b: &[u8]) -> Result<Vec<Proposal>> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        if b.len() < at + 8 {
            return Err(ParseError::Truncated("proposal"));
        }
        let last = b[at];
        let len = be16(b, at + 2) as usize;
        if len < 8 || at + len > b.len() {
            return Err(ParseError::BadLength("proposal"));
        }
        let p = &b[at..at + len];
        let num = p[4];
        let protocol = p[5];
        let spi_size = p[6] as usize;
        let ntrans = p[7] as usize;
        if 8 + spi_size > len {
            return Err(ParseError::BadLength("proposal SPI"));
        }
        // Requests number proposals 1, 2, …; a response echoes the chosen proposal's number.
        let prev = out.last().map(|p: &Proposal| p.num);
        if num == 0 || prev.is_some_and(|p| num != p.wrapping_add(1)) {
            return Err(ParseError::Invalid("proposal numbering"));
        }
        let spi = p[8..8 + spi_size].to_vec();
        let mut transforms = Vec::with_capacity(ntrans.min(64));
        let mut t_at = 8 + spi_size;
        for i in 0..ntrans {
            if len < t_at + 8 {
                return Err(ParseError::Truncated("transform"));
            }
            let t_last = p[t_at];
            let t_len = be16(p, t_at + 2) as usize;
            if t_len < 8 || t_at + t_len > len {
                return Err(ParseError::BadLength("transform"));
            }
            let expect_last = if i + 1 == ntrans { 0 } else { 3 };
            if t_last != expect_last {
                return Err(ParseError::Invalid("transform 'last' field"));
            }
            let ty = p[t_at + 4];
            let id = be16(p, t_at + 6);
            let mut key_len = None;
            let mut a = t_at + 8;
            while a < t_at + t_len {
                if t_at + t_len < a + 4 {
                    return Err(ParseError::Truncated("transform attribute"));
                }
                let at_ty = be16(p, a);
                if at_ty & 0x8000 != 0 {
                    if at_ty & 0x7fff == ATTR_KEY_LENGTH {
                        if key_len.is_some() {
                            return Err(ParseError::Invalid("duplicate key length attribute"));
                        }
                        key_len = Some(be16(p, a + 2));
                    } else {
                        return Err(ParseError::Invalid("unknown transform attribute"));
                    }
                    a += 4;
                } else {
                    // TLV attributes are not defined for IKEv2: skip them, but a transform
                    // carrying one is not something we can honour.
                    let l = be16(p, a + 2) as usize;
                    if t_at + t_len < a + 4 + l {
                        return Err(ParseError::BadLength("transform attribute"));
                    }
                    return Err(ParseError::Invalid("unknown transform attribute"));
                }
            }
            transforms.push(Transform { ty, id, key_len });
            t_at += t_len;
        }
        if t_at != len {
            return Err(ParseError::BadLength("proposal transforms"));
        }
        out.push(Proposal {
            num,
            protocol,
            spi,
            transforms,
        });
        at += len;
        match last {
            0 => break,
            2 => continue,
            _ => return Err(ParseError::Invalid("proposal 'last' field")),
        }
    }
    if at != b.len() {
        return Err(ParseError::BadLength("SA payload"));
    }
    Ok(out)
}

fn parse_ts(b: &[u8]) -> Result<Vec<TrafficSelector>> {
    if b.len() < 4 {
        return Err(ParseError::Truncated("TS payload"));
    }
    let n = b[0] as usize;
    if n == 0 {
        return Err(ParseError::Invalid("empty TS payload"));
    }
    let mut at = 4;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        if b.len() < at + 8 {
            return Err(ParseError::Truncated("traffic selector"));
        }
        let ty = b[at];
        let len = be16(b, at + 2) as usize;
        let alen = match ty {
            TS_IPV4_ADDR_RANGE => 4,
            TS_IPV6_ADDR_RANGE => 16,
            _ => return Err(ParseError::Invalid("traffic selector type")),
        };
        if len != 8 + 2 * alen || b.len() < at + len {
            return Err(ParseError::BadLength("traffic selector"));
        }
        let addr = |o: usize| -> IpAddr {
            if alen == 4 {
                IpAddr::V4(Ipv4Addr::new(b[o], b[o + 1], b[o + 2], b[o + 3]))
            } else {
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(a))
            }
        };
        out.push(TrafficSelector {
            protocol: b[at + 1],
            start_port: be16(b, at + 4),
            end_port: be16(b, at + 6),
            start: addr(at + 8),
            end: addr(at + 8 + alen),
        });
        at += len;
    }
    if at != b.len() {
        return Err(ParseError::BadLength("TS payload"));
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Emitting

fn put16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends the body (without generic header) of `p`.
pub fn emit_body(p: &Payload, out: &mut Vec<u8>) {
    match p {
        Payload::Sa(props) => {
            for (i, pr) in props.iter().enumerate() {
                let start = out.len();
                out.push(if i + 1 == props.len() { 0 } else { 2 });
                out.push(0);
                put16(out, 0);
                out.push(pr.num);
                out.push(pr.protocol);
                out.push(pr.spi.len() as u8);
                out.push(pr.transforms.len() as u8);
                out.extend_from_slice(&pr.spi);
                for (j, t) in pr.transforms.iter().enumerate() {
                    out.push(if j + 1 == pr.transforms.len() { 0 } else { 3 });
                    out.push(0);
                    put16(out, if t.key_len.is_some() { 12 } else { 8 });
                    out.push(t.ty);
                    out.push(0);
                    put16(out, t.id);
                    if let Some(k) = t.key_len {
                        put16(out, 0x8000 | ATTR_KEY_LENGTH);
                        put16(out, k);
                    }
                }
                let len = (out.len() - start) as u16;
                out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
            }
        }
        Payload::Ke { group, data } => {
            put16(out, *group);
            put16(out, 0);
            out.extend_from_slice(data);
        }
        Payload::IdI(id) | Payload::IdR(id) => {
            out.extend_from_slice(&[id.id_type, 0, 0, 0]);
            out.extend_from_slice(&id.data);
        }
        Payload::Cert { encoding, data } | Payload::CertReq { encoding, data } => {
            out.push(*encoding);
            out.extend_from_slice(data);
        }
        Payload::Auth { method, data } => {
            out.extend_from_slice(&[*method, 0, 0, 0]);
            out.extend_from_slice(data);
        }
        Payload::Nonce(n) => out.extend_from_slice(n),
        Payload::Notify(n) => {
            out.push(n.protocol);
            out.push(n.spi.len() as u8);
            put16(out, n.ty);
            out.extend_from_slice(&n.spi);
            out.extend_from_slice(&n.data);
        }
        Payload::Delete(d) => {
            out.push(d.protocol);
            out.push(d.spi_size);
            put16(out, d.spis.len() as u16);
            for s in &d.spis {
                out.extend_from_slice(s);
            }
        }
        Payload::Vendor(v) => out.extend_from_slice(v),
        Payload::TsI(ts) | Payload::TsR(ts) => {
            out.push(ts.len() as u8);
            out.extend_from_slice(&[0, 0, 0]);
            for t in ts {
                let v6 = t.start.is_ipv6();
                out.push(if v6 {
                    TS_IPV6_ADDR_RANGE
                } else {
                    TS_IPV4_ADDR_RANGE
                });
                out.push(t.protocol);
                put16(out, if v6 { 40 } else { 16 });
                put16(out, t.start_port);
                put16(out, t.end_port);
                for a in [t.start, t.end] {
                    match a {
                        IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                        IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
                    }
                }
            }
        }
        Payload::Other { body, .. } => out.extend_from_slice(body),
    }
}

/// Appends a chain of payloads with their generic headers. The last payload's "next" field
/// is `last_next` (NONE, or SK when an encrypted payload follows).
pub fn emit_payloads(payloads: &[Payload], last_next: u8, out: &mut Vec<u8>) {
    for (i, p) in payloads.iter().enumerate() {
        let start = out.len();
        let next = payloads.get(i + 1).map_or(last_next, Payload::ty);
        out.push(next);
        out.push(0);
        put16(out, 0);
        emit_body(p, out);
        let len = (out.len() - start) as u16;
        out[start + 2..start + 4].copy_from_slice(&len.to_be_bytes());
    }
}

/// A whole unencrypted message (IKE_SA_INIT, or an unprotected error answer).
pub fn emit_plain(mut header: Header, payloads: &[Payload]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    header.next_payload = payloads.first().map_or(payload_type::NONE, Payload::ty);
    emit_payloads(payloads, payload_type::NONE, &mut out);
    header.length = out.len() as u32;
    header.write(&mut out);
    out
}

/// The payload of a given kind, if present.
pub fn find_notify(payloads: &[Payload], ty: u16) -> Option<&Notify> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.ty == ty => Some(n),
        _ => None,
    })
}

/// The first error notify (type < 16384) in a message, if any.
pub fn error_notify(payloads: &[Payload]) -> Option<&Notify> {
    payloads.iter().find_map(|p| match p {
        Payload::Notify(n) if n.ty < 16384 => Some(n),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Payload> {
        vec![
            Payload::Sa(vec![
                Proposal {
                    num: 1,
                    protocol: protocol::ESP,
                    spi: vec![1, 2, 3, 4],
                    transforms: vec![
                        Transform {
                            ty: 1,
                            id: 20,
                            key_len: Some(256),
                        },
                        Transform {
                            ty: 5,
                            id: 0,
                            key_len: None,
                        },
                    ],
                },
                Proposal {
                    num: 2,
                    protocol: protocol::ESP,
                    spi: vec![1, 2, 3, 4],
                    transforms: vec![Transform {
                        ty: 1,
                        id: 28,
                        key_len: None,
                    }],
                },
            ]),
            Payload::Ke {
                group: 19,
                data: vec![9; 64],
            },
            Payload::Nonce(vec![7; 32]),
            Payload::Notify(Notify::new(notify::NAT_DETECTION_SOURCE_IP, vec![1; 20])),
            Payload::IdI(IdPayload {
                id_type: 1,
                data: vec![198, 18, 0, 1],
            }),
            Payload::Auth {
                method: 2,
                data: vec![3; 32],
            },
            Payload::TsI(vec![TrafficSelector {
                protocol: 0,
                start_port: 0,
                end_port: 65535,
                start: "10.0.0.0".parse().unwrap(),
                end: "10.0.0.255".parse().unwrap(),
            }]),
            Payload::TsR(vec![TrafficSelector {
                protocol: 6,
                start_port: 80,
                end_port: 80,
                start: "fd00::".parse().unwrap(),
                end: "fd00::ffff".parse().unwrap(),
            }]),
            Payload::Delete(Delete {
                protocol: protocol::ESP,
                spi_size: 4,
                spis: vec![vec![1, 2, 3, 4], vec![5, 6, 7, 8]],
            }),
            Payload::Vendor(b"vnet".to_vec()),
        ]
    }

    #[test]
    fn round_trip() {
        let h = Header {
            spi_i: 0x0102030405060708,
            spi_r: 0,
            next_payload: 0,
            version: 0x20,
            exchange: exchange::IKE_SA_INIT,
            flags: flags::INITIATOR,
            message_id: 0,
            length: 0,
        };
        let bytes = emit_plain(h, &sample());
        let m = parse_message(&bytes).unwrap();
        assert_eq!(m.payloads, sample());
        assert!(m.encrypted.is_none());
        assert_eq!(m.header.length as usize, bytes.len());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let h = Header {
            spi_i: 1,
            spi_r: 2,
            next_payload: 0,
            version: 0x20,
            exchange: exchange::IKE_SA_INIT,
            flags: 0,
            message_id: 0,
            length: 0,
        };
        let bytes = emit_plain(h, &sample());
        for n in 0..bytes.len() {
            let mut b = bytes[..n].to_vec();
            if b.len() >= HEADER_LEN {
                let l = (b.len() as u32).to_be_bytes();
                b[24..28].copy_from_slice(&l);
            }
            assert!(parse_message(&b).is_err(), "prefix {n} parsed");
        }
    }

    #[test]
    fn critical_unknown_payload_refused() {
        let mut bytes = emit_plain(
            Header {
                spi_i: 1,
                spi_r: 0,
                next_payload: 0,
                version: 0x20,
                exchange: exchange::IKE_SA_INIT,
                flags: 0,
                message_id: 0,
                length: 0,
            },
            &[Payload::Other {
                ty: 200,
                body: vec![1, 2],
            }],
        );
        assert!(parse_message(&bytes).is_ok());
        bytes[HEADER_LEN + 1] = 0x80;
        assert_eq!(
            parse_message(&bytes).unwrap_err(),
            ParseError::UnsupportedCritical(200)
        );
    }
}
