//! The IKEv2 state machine for one peer: the current IKE SA (and the one it replaces while
//! a rekey finishes), its Child SAs, the exchange we wait for, and the last response we
//! sent (message-ID window of one, RFC 7296 §2.3).

use core::fmt;
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_lc_rs::{digest, hmac};
use zeroize::Zeroizing;

use crate::cert::{self, LocalCert, TrustAnchors};
use crate::crypto::{self, DhPrivate, IkeKeys, Secret, SkCipher};
use crate::proposal::{self, DhGroup, Kind, Prf, ProposalSpec, Suite};
use crate::wire::{
    self, exchange, flags, notify, payload_type, protocol, Delete, Header, IdPayload, Notify,
    Payload, RawMessage, TrafficSelector,
};
use crate::{ts, Rng};

/// Which side starts the first exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Initiator,
    Responder,
}

/// An IKE identity (RFC 7296 §3.5). Distinguished names compare by meaning, not bytes
/// ([`cert::dn_equal`]): the same DN may be encoded with different string types.
#[derive(Clone, Debug)]
pub enum Identity {
    Addr(IpAddr),
    Fqdn(String),
    Email(String),
    KeyId(Vec<u8>),
    /// DER ASN.1 distinguished name (certificates, point-to-site).
    Dn(Vec<u8>),
}

impl Identity {
    pub fn to_payload(&self) -> IdPayload {
        let (id_type, data) = match self {
            Identity::Addr(IpAddr::V4(a)) => (1, a.octets().to_vec()),
            Identity::Addr(IpAddr::V6(a)) => (5, a.octets().to_vec()),
            Identity::Fqdn(s) => (2, s.as_bytes().to_vec()),
            Identity::Email(s) => (3, s.as_bytes().to_vec()),
            Identity::Dn(d) => (9, d.clone()),
            Identity::KeyId(k) => (11, k.clone()),
        };
        IdPayload { id_type, data }
    }

    pub fn from_payload(p: &IdPayload) -> Option<Identity> {
        Some(match p.id_type {
            1 => Identity::Addr(IpAddr::V4(<[u8; 4]>::try_from(&p.data[..]).ok()?.into())),
            5 => Identity::Addr(IpAddr::V6(<[u8; 16]>::try_from(&p.data[..]).ok()?.into())),
            2 => Identity::Fqdn(String::from_utf8(p.data.clone()).ok()?),
            3 => Identity::Email(String::from_utf8(p.data.clone()).ok()?),
            9 => Identity::Dn(p.data.clone()),
            11 => Identity::KeyId(p.data.clone()),
            _ => return None,
        })
    }

    /// Parses strongSwan-like identity text: an address, a distinguished name
    /// (`O=vnet, CN=gw`), `user@host`, or an FQDN.
    pub fn parse(s: &str) -> Identity {
        if let Ok(a) = s.parse::<IpAddr>() {
            Identity::Addr(a)
        } else if let Some(dn) = s.contains('=').then(|| cert::dn_from_str(s)).flatten() {
            Identity::Dn(dn)
        } else if s.contains('@') {
            Identity::Email(s.to_string())
        } else {
            Identity::Fqdn(s.to_string())
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Addr(a) => write!(f, "{a}"),
            Identity::Fqdn(s) | Identity::Email(s) => f.write_str(s),
            Identity::KeyId(k) => write!(f, "keyid:{}", hex(k)),
            Identity::Dn(d) => match cert::dn_to_string(d) {
                Some(text) => f.write_str(&text),
                None => write!(f, "dn:{}", hex(d)),
            },
        }
    }
}

impl PartialEq for Identity {
    fn eq(&self, other: &Identity) -> bool {
        match (self, other) {
            (Identity::Addr(a), Identity::Addr(b)) => a == b,
            (Identity::Fqdn(a), Identity::Fqdn(b)) | (Identity::Email(a), Identity::Email(b)) => {
                a == b
            }
            (Identity::KeyId(a), Identity::KeyId(b)) => a == b,
            (Identity::Dn(a), Identity::Dn(b)) => cert::dn_equal(a, b),
            _ => false,
        }
    }
}

impl Eq for Identity {}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Configuration of one connection.
#[derive(Clone)]
pub struct Config {
    pub role: Role,
    pub local_id: Identity,
    /// If set, the peer must authenticate as this identity.
    pub remote_id: Option<Identity>,
    /// The pre-shared key, for whichever side does not use a certificate (below).
    pub psk: Secret,
    /// Authenticate ourselves with this certificate (a signature) instead of the PSK.
    pub cert: Option<Arc<LocalCert>>,
    /// Require the peer to authenticate with a certificate from these CAs instead of the PSK.
    pub trust: Option<Arc<TrustAnchors>>,
    /// Wall-clock time (Unix seconds) at an instant, for certificate validity: the engine has
    /// no clock of its own.
    pub unix_time: Option<(Instant, u64)>,
    /// Initiator (remote-access client): ask the responder for an inner IPv4 address (CP
    /// CFG_REQUEST); the Child SA's local selector becomes that address.
    pub request_vip: bool,
    /// Responder (gateway): hand out inner addresses from this pool to initiators that ask.
    pub vip_pool: Option<Arc<dyn crate::cp::AddressPool>>,
    /// Responder: DNS servers to tell such initiators (INTERNAL_IP4_DNS).
    pub vip_dns: Vec<std::net::Ipv4Addr>,
    pub ike_proposals: Vec<ProposalSpec>,
    pub esp_proposals: Vec<ProposalSpec>,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    /// Liveness check after this long without hearing from the peer.
    pub dpd: Option<Duration>,
    /// First retransmission timeout; doubled each time.
    pub retransmit_timeout: Duration,
    /// Retransmissions before the peer is declared dead.
    pub retransmit_tries: u32,
    /// Rekey the IKE SA after this long.
    pub ike_rekey: Option<Duration>,
    /// Rekey each Child SA after this long.
    pub child_rekey: Option<Duration>,
    /// Largest IKE message we send unfragmented once both sides support RFC 7383.
    pub max_message: usize,
    /// Pretend to be behind a NAT so that ESP is UDP-encapsulated (strongSwan `encap = yes`).
    pub force_encap: bool,
    /// Responder: demand a COOKIE before keeping any state (RFC 7296 §2.6, under load).
    pub require_cookie: bool,
    /// Responder: give up on a half-open IKE SA after this long.
    pub half_open_timeout: Duration,
    /// Octets of nonce we send.
    pub nonce_len: usize,
}

impl Config {
    /// Defaults around the three things every connection needs.
    pub fn new(role: Role, local_id: Identity, psk: Vec<u8>) -> Config {
        Config {
            role,
            local_id,
            remote_id: None,
            psk: Zeroizing::new(psk),
            cert: None,
            trust: None,
            unix_time: None,
            request_vip: false,
            vip_pool: None,
            vip_dns: Vec::new(),
            ike_proposals: ProposalSpec::parse_list(Kind::Ike, "aes256gcm16-prfsha256-ecp256")
                .unwrap_or_default(),
            esp_proposals: ProposalSpec::parse_list(Kind::Esp, "aes256gcm16").unwrap_or_default(),
            local_ts: Vec::new(),
            remote_ts: Vec::new(),
            dpd: None,
            retransmit_timeout: Duration::from_secs(2),
            retransmit_tries: 5,
            ike_rekey: None,
            child_rekey: None,
            max_message: 1200,
            force_encap: false,
            require_cookie: false,
            half_open_timeout: Duration::from_secs(30),
            nonce_len: 32,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("role", &self.role)
            .field("local_id", &self.local_id)
            .field("remote_id", &self.remote_id)
            .field("psk", &"<redacted>")
            .field("cert", &self.cert)
            .field("trust", &self.trust)
            .field("ike_proposals", &self.ike_proposals)
            .field("esp_proposals", &self.esp_proposals)
            .field("local_ts", &self.local_ts)
            .field("remote_ts", &self.remote_ts)
            .finish_non_exhaustive()
    }
}

/// A datagram to send. `payload` is the UDP payload (with the non-ESP marker on port 4500).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: Vec<u8>,
}

/// A Child SA ready to install: both directions' SPIs and keys, from our point of view.
#[derive(Clone)]
pub struct ChildSa {
    /// The SPI the peer puts on packets to us.
    pub spi_in: u32,
    /// The SPI we put on packets to the peer.
    pub spi_out: u32,
    pub suite: Suite,
    /// Inbound keys: encryption key (with salt for AEAD) then integrity key.
    pub keys_in: Secret,
    /// Outbound keys, same layout.
    pub keys_out: Secret,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    /// ESP goes in UDP (RFC 3948) between `local` and `remote`.
    pub encap: bool,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// The inbound SPI of the Child SA this one replaces.
    pub rekey_of: Option<u32>,
}

impl fmt::Debug for ChildSa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSa")
            .field("spi_in", &format_args!("{:08x}", self.spi_in))
            .field("spi_out", &format_args!("{:08x}", self.spi_out))
            .field("suite", &self.suite.to_string())
            .field("keys", &"<redacted>")
            .field("local_ts", &self.local_ts)
            .field("remote_ts", &self.remote_ts)
            .field("encap", &self.encap)
            .field("rekey_of", &self.rekey_of)
            .finish()
    }
}

/// Why an exchange or the whole connection failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// None of the peer's proposals is acceptable to us (`ike` = for the IKE SA).
    NoProposalChosen { ike: bool },
    /// The peer answered with an error notify.
    PeerRefused { exchange: u8, notify: u16 },
    /// The peer's AUTH payload did not verify, or its identity is not the one configured.
    AuthenticationFailed(String),
    /// Traffic selectors do not overlap, or the peer's answer is outside our proposal.
    TsUnacceptable,
    /// A message that breaks the protocol.
    InvalidSyntax(String),
    /// The peer chose something we did not offer, or answered inconsistently.
    InvalidResponse(&'static str),
    /// Key exchange failed (bad public value).
    KeyExchange,
    /// No answer after all retransmissions.
    Timeout { exchange: u8 },
    /// The responder's half-open IKE SA expired before IKE_AUTH.
    HalfOpenTimeout,
}

fn exchange_name(e: u8) -> &'static str {
    match e {
        exchange::IKE_SA_INIT => "IKE_SA_INIT",
        exchange::IKE_AUTH => "IKE_AUTH",
        exchange::CREATE_CHILD_SA => "CREATE_CHILD_SA",
        exchange::INFORMATIONAL => "INFORMATIONAL",
        _ => "unknown exchange",
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoProposalChosen { ike } => write!(
                f,
                "NO_PROPOSAL_CHOSEN: no acceptable {} proposal from the peer",
                if *ike { "IKE" } else { "ESP" }
            ),
            Error::PeerRefused {
                exchange,
                notify: n,
            } => {
                write!(
                    f,
                    "peer refused {}: {}",
                    exchange_name(*exchange),
                    notify::name(*n)
                )?;
                if *n == notify::AUTHENTICATION_FAILED {
                    f.write_str(" (wrong pre-shared key or identity?)")?;
                }
                Ok(())
            }
            Error::AuthenticationFailed(why) => write!(f, "AUTHENTICATION_FAILED: {why}"),
            Error::TsUnacceptable => f.write_str("TS_UNACCEPTABLE: traffic selectors do not match"),
            Error::InvalidSyntax(w) => write!(f, "INVALID_SYNTAX: {w}"),
            Error::InvalidResponse(w) => write!(f, "invalid response: {w}"),
            Error::KeyExchange => f.write_str("key exchange failed: invalid public value"),
            Error::Timeout { exchange } => write!(
                f,
                "peer did not answer {} after all retransmissions",
                exchange_name(*exchange)
            ),
            Error::HalfOpenTimeout => f.write_str("IKE_AUTH did not arrive in time"),
        }
    }
}

impl std::error::Error for Error {}

/// What the engine reports.
#[derive(Debug)]
pub enum Event {
    /// IKE SA authenticated (or replaced by a rekey, `rekeyed` = true).
    IkeSaUp {
        spi_i: u64,
        spi_r: u64,
        suite: Suite,
        local: SocketAddr,
        remote: SocketAddr,
        /// We are behind a NAT (or pretend to be).
        nat_local: bool,
        /// The peer is behind a NAT.
        nat_remote: bool,
        remote_id: Option<Identity>,
        rekeyed: bool,
    },
    ChildSaUp(ChildSa),
    ChildSaDown {
        spi_in: u32,
        spi_out: u32,
        reason: &'static str,
    },
    /// An exchange failed. If the connection cannot go on, [`Event::Closed`] follows.
    Failed(Error),
    /// The IKE SA is gone (deleted, dead peer, failed negotiation); nothing more happens.
    Closed {
        reason: String,
    },
    /// An inner address was assigned (CP, before the first Child SA comes up): to us (`ours`,
    /// as a remote-access client, with the DNS servers the gateway named), or by us to the
    /// peer from the pool.
    VirtualIp {
        addr: std::net::Ipv4Addr,
        dns: Vec<std::net::Ipv4Addr>,
        ours: bool,
    },
}

/// Coarse state for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Connecting,
    Established,
    Closed,
}

// ---------------------------------------------------------------------------------------

struct IkeSa {
    spi_i: u64,
    spi_r: u64,
    /// We are the original initiator of this IKE SA.
    initiator: bool,
    suite: Suite,
    prf: Prf,
    keys: IkeKeys,
    tx: SkCipher,
    rx: SkCipher,
    iv_counter: u64,
    next_msg_id: u32,
    peer_msg_id: u32,
    last_response: Option<(u32, Vec<Vec<u8>>)>,
    peer_frag: bool,
    reasm: Option<Reasm>,
}

struct Reasm {
    msg_id: u32,
    response: bool,
    first: u8,
    parts: Vec<Option<Vec<u8>>>,
    octets: usize,
}

impl IkeSa {
    fn new(
        suite: Suite,
        keys: IkeKeys,
        spi_i: u64,
        spi_r: u64,
        initiator: bool,
        peer_frag: bool,
    ) -> Option<IkeSa> {
        let ci = SkCipher::new(&suite, &keys.sk_ei, &keys.sk_ai)?;
        let cr = SkCipher::new(&suite, &keys.sk_er, &keys.sk_ar)?;
        let (tx, rx) = if initiator { (ci, cr) } else { (cr, ci) };
        Some(IkeSa {
            spi_i,
            spi_r,
            initiator,
            prf: suite.prf.unwrap_or(Prf::HmacSha256),
            suite,
            keys,
            tx,
            rx,
            iv_counter: 0,
            next_msg_id: 0,
            peer_msg_id: 0,
            last_response: None,
            peer_frag,
            reasm: None,
        })
    }

    /// Builds a protected message: one datagram, or SKF fragments when too large.
    fn protect(
        &mut self,
        ex: u8,
        response: bool,
        msg_id: u32,
        payloads: &[Payload],
        max: usize,
        rng: &mut dyn Rng,
    ) -> Vec<Vec<u8>> {
        let mut plain = Vec::new();
        wire::emit_payloads(payloads, payload_type::NONE, &mut plain);
        let first = payloads.first().map_or(payload_type::NONE, Payload::ty);
        let mut hdr = Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: payload_type::SK,
            version: 0x20,
            exchange: ex,
            flags: if self.initiator { flags::INITIATOR } else { 0 }
                | if response { flags::RESPONSE } else { 0 },
            message_id: msg_id,
            length: 0,
        };
        let whole = wire::HEADER_LEN + wire::GENERIC_LEN + self.tx.sealed_len(plain.len());
        if whole <= max || !self.peer_frag || ex == exchange::IKE_SA_INIT {
            let mut msg = vec![0u8; wire::HEADER_LEN + wire::GENERIC_LEN];
            hdr.length = whole as u32;
            hdr.write(&mut msg);
            let sk_len = (wire::GENERIC_LEN + self.tx.sealed_len(plain.len())) as u16;
            msg[wire::HEADER_LEN] = first;
            msg[wire::HEADER_LEN + 2..wire::HEADER_LEN + 4].copy_from_slice(&sk_len.to_be_bytes());
            self.iv_counter += 1;
            self.tx.seal(&mut msg, &plain, self.iv_counter, rng);
            return vec![msg];
        }
        // RFC 7383 §2.5: split the plaintext so that every fragment fits in `max`.
        let overhead = wire::HEADER_LEN + wire::GENERIC_LEN + 4 + self.tx.sealed_len(0);
        let room = max.saturating_sub(overhead).max(64);
        let chunks: Vec<&[u8]> = plain.chunks(room).collect();
        let total = chunks.len() as u16;
        hdr.next_payload = payload_type::SKF;
        let mut out = Vec::with_capacity(chunks.len());
        for (i, c) in chunks.iter().enumerate() {
            let num = (i + 1) as u16;
            let sealed = self.tx.sealed_len(c.len());
            let skf_len = wire::GENERIC_LEN + 4 + sealed;
            let mut msg = vec![0u8; wire::HEADER_LEN + wire::GENERIC_LEN + 4];
            hdr.length = (wire::HEADER_LEN + skf_len) as u32;
            hdr.write(&mut msg);
            msg[wire::HEADER_LEN] = if num == 1 { first } else { payload_type::NONE };
            msg[wire::HEADER_LEN + 2..wire::HEADER_LEN + 4]
                .copy_from_slice(&(skf_len as u16).to_be_bytes());
            msg[wire::HEADER_LEN + 4..wire::HEADER_LEN + 6].copy_from_slice(&num.to_be_bytes());
            msg[wire::HEADER_LEN + 6..wire::HEADER_LEN + 8].copy_from_slice(&total.to_be_bytes());
            self.iv_counter += 1;
            self.tx.seal(&mut msg, c, self.iv_counter, rng);
            out.push(msg);
        }
        out
    }

    /// Verifies and decrypts; `Ok(None)` while fragments are missing.
    fn unprotect(&mut self, raw: &RawMessage, bytes: &[u8]) -> Result<Option<Vec<Payload>>, ()> {
        let enc = raw.encrypted.ok_or(())?;
        let plain = self.rx.open(bytes, enc.body).map_err(|_| ())?;
        let Some((num, total)) = enc.fragment else {
            return wire::parse_payloads(enc.first, &plain)
                .map(Some)
                .map_err(|_| ());
        };
        if total > 64 {
            return Err(());
        }
        let h = &raw.header;
        let fresh = match &self.reasm {
            Some(r) => {
                r.msg_id != h.message_id
                    || r.response != h.is_response()
                    || r.parts.len() != total as usize
            }
            None => true,
        };
        if fresh {
            self.reasm = Some(Reasm {
                msg_id: h.message_id,
                response: h.is_response(),
                first: payload_type::NONE,
                parts: vec![None; total as usize],
                octets: 0,
            });
        }
        let r = self.reasm.as_mut().ok_or(())?;
        let slot = &mut r.parts[num as usize - 1];
        if slot.is_none() {
            r.octets += plain.len();
            if r.octets > 64 * 1024 {
                self.reasm = None;
                return Err(());
            }
            if num == 1 {
                r.first = enc.first;
            }
            *slot = Some(plain);
        }
        if r.parts.iter().any(Option::is_none) {
            return Ok(None);
        }
        let r = self.reasm.take().ok_or(())?;
        let mut all = Vec::with_capacity(r.octets);
        for p in r.parts.into_iter().flatten() {
            all.extend_from_slice(&p);
        }
        wire::parse_payloads(r.first, &all)
            .map(Some)
            .map_err(|_| ())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChildState {
    Installed,
    /// We sent a rekey for it.
    Rekeying,
    /// Replaced; waiting for its delete.
    Rekeyed,
    /// We sent a delete for it.
    Deleting,
}

struct Child {
    sa: ChildSa,
    state: ChildState,
    rekey_at: Option<Instant>,
    /// The peer rekeyed this SA while our own rekey was outstanding: (its new SA's inbound
    /// SPI on our side, the nonces of that exchange).
    collision: Option<(u32, Vec<u8>, Vec<u8>)>,
}

struct ChildOffer {
    spi_in: u32,
    dh: Option<DhPrivate>,
    nonce: Vec<u8>,
    proposals: Vec<ProposalSpec>,
    local_ts: Vec<TrafficSelector>,
    remote_ts: Vec<TrafficSelector>,
}

enum PendingKind {
    Init,
    Auth(ChildOffer),
    CreateChild {
        offer: ChildOffer,
        rekey_of: Option<u32>,
    },
    IkeRekey {
        spi_i: u64,
        dh: DhPrivate,
        nonce: Vec<u8>,
    },
    DeleteChildren(Vec<u32>),
    DeleteIke,
    Dpd,
}

/// The peer's IKE SA rekey that arrived while ours was outstanding (RFC 7296 §2.8.2): we
/// answered it, and keep the IKE SA it created apart until our own exchange ends and the
/// nonces tell which of the two new IKE SAs survives.
struct IkeCollision {
    /// The new IKE SA of the peer's exchange; `None` once the peer deleted it as redundant.
    sa: Option<IkeSa>,
    ni: Vec<u8>,
    nr: Vec<u8>,
}

/// The lower of an exchange's two nonces; of two colliding exchanges, the one holding the
/// lowest of the four nonces created the redundant SA (RFC 7296 §2.8.1, §2.8.2).
fn lower_nonce<'a>(ni: &'a [u8], nr: &'a [u8]) -> &'a [u8] {
    ni.min(nr)
}

type Spis = (u64, u64);

/// Our IKE rekey request that the peer overtook by deleting the IKE SA it was sent on; its
/// answer may still be on the way, until `until`.
struct LateRekey {
    spis: Spis,
    msg_id: u32,
    spi_i: u64,
    dh: DhPrivate,
    ni: Vec<u8>,
    until: Instant,
}

/// Any IKE SA we hold (current, replaced, colliding or redundant) by its SPIs.
fn find_sa<'a>(
    sa: &'a mut Option<IkeSa>,
    old: &'a mut Option<IkeSa>,
    collision: &'a mut Option<IkeCollision>,
    redundant: &'a mut Option<(IkeSa, Instant)>,
    spis: Spis,
) -> Option<&'a mut IkeSa> {
    let hit = |s: &&mut IkeSa| (s.spi_i, s.spi_r) == spis;
    sa.as_mut()
        .filter(hit)
        .or(old.as_mut().filter(hit))
        .or(collision.as_mut().and_then(|c| c.sa.as_mut()).filter(hit))
        .or(redundant.as_mut().map(|r| &mut r.0).filter(hit))
}

/// [`find_sa`] on an [`Ike`]'s fields, leaving the others borrowable.
macro_rules! sa_mut {
    ($s:expr, $spis:expr) => {
        find_sa(
            &mut $s.sa,
            &mut $s.old_sa,
            &mut $s.collision,
            &mut $s.redundant,
            $spis,
        )
    };
}

struct Pending {
    spis: Spis,
    msg_id: u32,
    exchange: u8,
    datagrams: Vec<Vec<u8>>,
    tries: u32,
    next: Instant,
    kind: PendingKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Task {
    RekeyChild(u32),
    RekeyIke,
    DeleteChild(u32),
    DeleteIke,
    /// Delete the redundant IKE SA of a collision that we created.
    DeleteRedundant,
    Dpd,
}

struct InitState {
    spi_i: u64,
    dh: DhPrivate,
    nonce: Vec<u8>,
    cookie: Option<Vec<u8>>,
    retries: u32,
    request: Vec<u8>,
}

/// Data the AUTH payloads sign, kept from IKE_SA_INIT until IKE_AUTH is done.
struct AuthCtx {
    init_request: Vec<u8>,
    init_response: Vec<u8>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    since: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    InitSent,
    AuthSent,
    AwaitAuth,
    Established,
    Closed,
}

/// One IKEv2 connection (see the crate documentation).
pub struct Ike {
    cfg: Config,
    rng: Box<dyn Rng + Send>,
    local: SocketAddr,
    remote: SocketAddr,
    nat_t: bool,
    nat_local: bool,
    nat_remote: bool,
    phase: Phase,
    init: Option<InitState>,
    auth: Option<AuthCtx>,
    /// The peer announced SHA2-256 in SIGNATURE_HASH_ALGORITHMS (RFC 7427).
    peer_rfc7427: bool,
    /// Inner address the gateway gave us (CP), or that we gave the peer from the pool.
    own_vip: Option<std::net::Ipv4Addr>,
    peer_vip: Option<std::net::Ipv4Addr>,
    /// Cached (request, response) of IKE_SA_INIT for retransmitted requests.
    init_cache: Option<(Vec<u8>, Vec<u8>)>,
    sa: Option<IkeSa>,
    /// The IKE SA being replaced, until its delete completes.
    old_sa: Option<IkeSa>,
    /// A simultaneous IKE SA rekey by the peer, until ours ends.
    collision: Option<IkeCollision>,
    /// The redundant IKE SA of a rekey collision: ours while we delete it, or the peer's
    /// while we wait (until the instant) for the peer to delete it.
    redundant: Option<(IkeSa, Instant)>,
    /// See [`LateRekey`].
    late_rekey: Option<LateRekey>,
    children: Vec<Child>,
    pending: Option<Pending>,
    tasks: VecDeque<Task>,
    events: VecDeque<Event>,
    transmits: VecDeque<Transmit>,
    cookie_secret: [u8; 32],
    last_rx: Instant,
    ike_rekey_at: Option<Instant>,
    remote_id: Option<Identity>,
}

fn nat_hash(spi_i: u64, spi_r: u64, addr: SocketAddr) -> Vec<u8> {
    let mut ctx = digest::Context::new(&digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(&spi_i.to_be_bytes());
    ctx.update(&spi_r.to_be_bytes());
    match addr.ip() {
        IpAddr::V4(a) => ctx.update(&a.octets()),
        IpAddr::V6(a) => ctx.update(&a.octets()),
    }
    ctx.update(&addr.port().to_be_bytes());
    ctx.finish().as_ref().to_vec()
}

fn find<'a, T>(payloads: &'a [Payload], f: impl Fn(&'a Payload) -> Option<T>) -> Option<T> {
    payloads.iter().find_map(f)
}

fn nonce_of(p: &[Payload]) -> Option<Vec<u8>> {
    find(p, |x| match x {
        Payload::Nonce(n) => Some(n.clone()),
        _ => None,
    })
}

fn ke_of(p: &[Payload]) -> Option<(u16, &[u8])> {
    find(p, |x| match x {
        Payload::Ke { group, data } => Some((*group, &data[..])),
        _ => None,
    })
}

fn sa_of(p: &[Payload]) -> Option<&[wire::Proposal]> {
    find(p, |x| match x {
        Payload::Sa(s) => Some(&s[..]),
        _ => None,
    })
}

fn tsi_of(p: &[Payload]) -> Option<&[TrafficSelector]> {
    find(p, |x| match x {
        Payload::TsI(t) => Some(&t[..]),
        _ => None,
    })
}

fn tsr_of(p: &[Payload]) -> Option<&[TrafficSelector]> {
    find(p, |x| match x {
        Payload::TsR(t) => Some(&t[..]),
        _ => None,
    })
}

fn spi32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.try_into().ok()?))
}

fn spi64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.try_into().ok()?))
}

fn n(ty: u16) -> Payload {
    Payload::Notify(Notify::new(ty, Vec::new()))
}

/// SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4) with the hashes we verify.
fn sig_hashes_notify() -> Payload {
    let data = cert::SIGNATURE_HASHES
        .iter()
        .flat_map(|h| h.to_be_bytes())
        .collect();
    Payload::Notify(Notify::new(notify::SIGNATURE_HASH_ALGORITHMS, data))
}

/// Whether the peer's SIGNATURE_HASH_ALGORITHMS lists SHA2-256 (our RFC 7427 signatures).
fn announces_sha256(p: &[Payload]) -> bool {
    wire::find_notify(p, notify::SIGNATURE_HASH_ALGORITHMS)
        .is_some_and(|nt| nt.data.chunks_exact(2).any(|c| c == [0, 2]))
}

impl Ike {
    /// Certificates in play on either side: then SIGNATURE_HASH_ALGORITHMS is sent.
    fn uses_certs(&self) -> bool {
        self.cfg.cert.is_some() || self.cfg.trust.is_some()
    }

    /// Unix seconds at `now`, from the configured anchor.
    fn unix_now(&self, now: Instant) -> Option<u64> {
        let (t0, secs) = self.cfg.unix_time?;
        Some(match now.checked_duration_since(t0) {
            Some(d) => secs.saturating_add(d.as_secs()),
            None => secs.saturating_sub(t0.duration_since(now).as_secs()),
        })
    }

    /// Our CERT payloads (if any) and AUTH payload over `message | peer_nonce | prf(sk_p,
    /// ID)`: a signature with our certificate's key, or the PSK's MAC.
    fn our_auth(
        &self,
        prf: Prf,
        message: &[u8],
        peer_nonce: &[u8],
        sk_p: &[u8],
        id: &wire::IdPayload,
    ) -> Result<(Vec<Payload>, Payload), String> {
        let Some(c) = &self.cfg.cert else {
            let value = crypto::psk_auth(
                prf,
                &self.cfg.psk,
                message,
                peer_nonce,
                sk_p,
                &id.rest_octets(),
            );
            return Ok((
                Vec::new(),
                Payload::Auth {
                    method: cert::method::PSK,
                    data: value.to_vec(),
                },
            ));
        };
        let octets = crypto::signed_octets(prf, message, peer_nonce, sk_p, &id.rest_octets());
        let (method, data) = c.sign(&octets, self.peer_rfc7427)?;
        let certs = c
            .chain()
            .iter()
            .map(|der| Payload::Cert {
                encoding: cert::X509_SIGNATURE,
                data: der.clone(),
            })
            .collect();
        Ok((certs, Payload::Auth { method, data }))
    }

    /// Checks the peer: its identity against the configured remote one, then its AUTH over
    /// `(message, our nonce, its SK_p)` — certificate and signature when we require
    /// certificates, else the PSK's MAC (constant-time compare).
    #[allow(clippy::too_many_arguments)]
    fn check_peer_auth(
        &self,
        now: Instant,
        p: &[Payload],
        prf: Prf,
        (message, nonce, sk_p): (&[u8], &[u8], &[u8]),
        id: &wire::IdPayload,
        (method, value): (u8, &[u8]),
        who: &str,
    ) -> Result<(), String> {
        if let Some(want) = &self.cfg.remote_id {
            if Identity::from_payload(id).as_ref() != Some(want) {
                return Err(format!(
                    "{who}'s identity is not the configured remote identity"
                ));
            }
        }
        if let Some(t) = &self.cfg.trust {
            let certs: Vec<Vec<u8>> = p
                .iter()
                .filter_map(|x| match x {
                    Payload::Cert { encoding, data } if *encoding == cert::X509_SIGNATURE => {
                        Some(data.clone())
                    }
                    _ => None,
                })
                .collect();
            let unix = self
                .unix_now(now)
                .ok_or("no wall-clock time to check certificates against")?;
            let octets = crypto::signed_octets(prf, message, nonce, sk_p, &id.rest_octets());
            return t
                .verify(&certs, id, (method, value), &octets, unix)
                .map_err(|e| format!("{who}'s certificate authentication failed: {e}"));
        }
        if method != cert::method::PSK {
            return Err(format!(
                "{who} authenticated with AUTH method {method} (a certificate?), a pre-shared key is configured"
            ));
        }
        let expected =
            crypto::psk_auth(prf, &self.cfg.psk, message, nonce, sk_p, &id.rest_octets());
        if crypto::ct_eq(&expected, value) {
            Ok(())
        } else {
            Err(format!(
                "{who}'s AUTH payload does not verify (wrong pre-shared key?)"
            ))
        }
    }

    /// A connection between `local` and `remote` (UDP port 500 normally).
    pub fn new(
        cfg: Config,
        local: SocketAddr,
        remote: SocketAddr,
        mut rng: Box<dyn Rng + Send>,
        now: Instant,
    ) -> Ike {
        let mut cookie_secret = [0u8; 32];
        rng.fill(&mut cookie_secret);
        Ike {
            cfg,
            rng,
            local,
            remote,
            nat_t: false,
            nat_local: false,
            nat_remote: false,
            phase: Phase::Idle,
            init: None,
            auth: None,
            peer_rfc7427: false,
            own_vip: None,
            peer_vip: None,
            init_cache: None,
            sa: None,
            old_sa: None,
            collision: None,
            redundant: None,
            late_rekey: None,
            children: Vec::new(),
            pending: None,
            tasks: VecDeque::new(),
            events: VecDeque::new(),
            transmits: VecDeque::new(),
            cookie_secret,
            last_rx: now,
            ike_rekey_at: None,
            remote_id: None,
        }
    }

    pub fn state(&self) -> State {
        match self.phase {
            Phase::Idle => State::Idle,
            Phase::InitSent | Phase::AuthSent | Phase::AwaitAuth => State::Connecting,
            Phase::Established => State::Established,
            Phase::Closed => State::Closed,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// The negotiated IKE suite and SPIs, once keys exist.
    pub fn ike_sa(&self) -> Option<(u64, u64, Suite)> {
        self.sa.as_ref().map(|s| (s.spi_i, s.spi_r, s.suite))
    }

    /// DEBUG ONLY, for decrypting captures (`vnet ipsec up --print-keys-for-tshark`): the
    /// current IKE SA's SPIs, suite and keys SK_ei, SK_er, SK_ai, SK_ar (RFC 7296 §2.14;
    /// AEAD keys with their salt, integrity keys empty). Never log these otherwise.
    pub fn ike_keys_for_debug(&self) -> Option<(u64, u64, Suite, [&[u8]; 4])> {
        self.sa.as_ref().map(|s| {
            let k = &s.keys;
            (
                s.spi_i,
                s.spi_r,
                s.suite,
                [&k.sk_ei[..], &k.sk_er[..], &k.sk_ai[..], &k.sk_ar[..]],
            )
        })
    }

    /// The installed Child SAs.
    pub fn child_sas(&self) -> impl Iterator<Item = &ChildSa> {
        self.children.iter().map(|c| &c.sa)
    }

    /// Addresses in use (they change when NAT traversal moves to port 4500).
    pub fn addresses(&self) -> (SocketAddr, SocketAddr) {
        (self.local, self.remote)
    }

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Ike::handle_timeout`] should be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.phase == Phase::Closed {
            return None;
        }
        let mut t: Option<Instant> = None;
        let mut add = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |y| y.min(x)));
            }
        };
        add(self.pending.as_ref().map(|p| p.next));
        add(self.redundant.as_ref().map(|r| r.1));
        add(self.late_rekey.as_ref().map(|l| l.until));
        if self.phase == Phase::AwaitAuth {
            add(self
                .auth
                .as_ref()
                .map(|a| a.since + self.cfg.half_open_timeout));
        }
        if self.phase == Phase::Established && self.pending.is_none() {
            add(self.cfg.dpd.map(|d| self.last_rx + d));
            add(self.ike_rekey_at);
            for c in &self.children {
                if c.state == ChildState::Installed {
                    add(c.rekey_at);
                }
            }
        }
        t
    }

    fn send(&mut self, payload: &[u8]) {
        let mut p = Vec::with_capacity(payload.len() + 4);
        if self.nat_t {
            p.extend_from_slice(&[0, 0, 0, 0]);
        }
        p.extend_from_slice(payload);
        self.transmits.push_back(Transmit {
            src: self.local,
            dst: self.remote,
            payload: p,
        });
    }

    fn fail(&mut self, e: Error) {
        self.events.push_back(Event::Failed(e));
    }

    fn close(&mut self, reason: String) {
        if self.phase == Phase::Closed {
            return;
        }
        for c in self.children.drain(..) {
            self.events.push_back(Event::ChildSaDown {
                spi_in: c.sa.spi_in,
                spi_out: c.sa.spi_out,
                reason: "IKE SA closed",
            });
        }
        self.phase = Phase::Closed;
        self.pending = None;
        self.tasks.clear();
        if let (Some(a), Some(pool)) = (self.peer_vip.take(), &self.cfg.vip_pool) {
            pool.release(a);
        }
        self.events.push_back(Event::Closed { reason });
    }

    fn fatal(&mut self, e: Error) {
        let reason = e.to_string();
        self.fail(e);
        self.close(reason);
    }

    fn random_spi64(&mut self) -> u64 {
        loop {
            let mut b = [0u8; 8];
            self.rng.fill(&mut b);
            let v = u64::from_be_bytes(b);
            if v != 0 {
                return v;
            }
        }
    }

    fn random_spi32(&mut self) -> u32 {
        loop {
            let mut b = [0u8; 4];
            self.rng.fill(&mut b);
            let v = u32::from_be_bytes(b);
            // SPIs 1..=255 are reserved by IANA (RFC 4303 §2.1).
            if v > 255 && !self.children.iter().any(|c| c.sa.spi_in == v) {
                return v;
            }
        }
    }

    fn nonce(&mut self) -> Vec<u8> {
        let mut n = vec![0u8; self.cfg.nonce_len.clamp(16, 256)];
        self.rng.fill(&mut n);
        n
    }

    // -----------------------------------------------------------------------------------
    // Initiating

    /// Initiator: starts IKE_SA_INIT.
    pub fn connect(&mut self, now: Instant) {
        if self.phase != Phase::Idle {
            return;
        }
        let Some(group) = self
            .cfg
            .ike_proposals
            .first()
            .and_then(|p| p.dh.first().copied())
        else {
            self.fatal(Error::NoProposalChosen { ike: true });
            return;
        };
        let spi_i = self.random_spi64();
        let nonce = self.nonce();
        let dh = DhPrivate::generate(group, &mut *self.rng);
        self.init = Some(InitState {
            spi_i,
            dh,
            nonce,
            cookie: None,
            retries: 0,
            request: Vec::new(),
        });
        self.phase = Phase::InitSent;
        self.send_init(now);
    }

    fn send_init(&mut self, now: Instant) {
        let certs = self.uses_certs();
        let Some(init) = self.init.as_mut() else {
            return;
        };
        let mut p = Vec::new();
        if let Some(c) = &init.cookie {
            p.push(Payload::Notify(Notify::new(notify::COOKIE, c.clone())));
        }
        p.push(Payload::Sa(ProposalSpec::to_wire(
            &self.cfg.ike_proposals,
            &[],
        )));
        p.push(Payload::Ke {
            group: init.dh.group().ikev2_id(),
            data: init.dh.public().to_vec(),
        });
        p.push(Payload::Nonce(init.nonce.clone()));
        let mut src_hash = nat_hash(init.spi_i, 0, self.local);
        if self.cfg.force_encap {
            // Fake a NAT in front of us so the peer encapsulates (as strongSwan's encap=yes).
            self.rng.fill(&mut src_hash);
        }
        p.push(Payload::Notify(Notify::new(
            notify::NAT_DETECTION_SOURCE_IP,
            src_hash,
        )));
        p.push(Payload::Notify(Notify::new(
            notify::NAT_DETECTION_DESTINATION_IP,
            nat_hash(init.spi_i, 0, self.remote),
        )));
        p.push(n(notify::IKEV2_FRAGMENTATION_SUPPORTED));
        if certs {
            p.push(sig_hashes_notify());
        }
        let msg = wire::emit_plain(
            Header {
                spi_i: init.spi_i,
                spi_r: 0,
                next_payload: 0,
                version: 0x20,
                exchange: exchange::IKE_SA_INIT,
                flags: flags::INITIATOR,
                message_id: 0,
                length: 0,
            },
            &p,
        );
        init.request = msg.clone();
        let spi_i = init.spi_i;
        self.send(&msg);
        self.pending = Some(Pending {
            spis: (spi_i, 0),
            msg_id: 0,
            exchange: exchange::IKE_SA_INIT,
            datagrams: vec![msg],
            tries: 0,
            next: now + self.cfg.retransmit_timeout,
            kind: PendingKind::Init,
        });
    }

    /// The SPIs of the current IKE SA (zero before there is one).
    fn cur(&self) -> Spis {
        self.sa.as_ref().map_or((0, 0), |s| (s.spi_i, s.spi_r))
    }

    /// Forgets a replaced, colliding or redundant IKE SA (deleted, or given up on).
    fn drop_aux(&mut self, spis: Spis) {
        let hit = |s: &IkeSa| (s.spi_i, s.spi_r) == spis;
        if self.old_sa.as_ref().is_some_and(hit) {
            self.old_sa = None;
        }
        if let Some(c) = &mut self.collision {
            if c.sa.as_ref().is_some_and(hit) {
                c.sa = None;
            }
        }
        if self.redundant.as_ref().is_some_and(|r| hit(&r.0)) {
            self.redundant = None;
        }
        if self.pending.as_ref().is_some_and(|p| p.spis == spis) {
            self.pending = None;
        }
    }

    /// All IKE SAs held: the current one first, then any being replaced, colliding or
    /// redundant (RFC 7296 §2.8.2). After a rekey has settled there is exactly one.
    pub fn ike_sa_spis(&self) -> Vec<(u64, u64)> {
        let mut v: Vec<(u64, u64)> = Vec::new();
        v.extend(self.sa.as_ref().map(|s| (s.spi_i, s.spi_r)));
        v.extend(self.old_sa.as_ref().map(|s| (s.spi_i, s.spi_r)));
        v.extend(
            self.collision
                .as_ref()
                .and_then(|c| c.sa.as_ref())
                .map(|s| (s.spi_i, s.spi_r)),
        );
        v.extend(self.redundant.as_ref().map(|r| (r.0.spi_i, r.0.spi_r)));
        v
    }

    /// Sends an encrypted request on the current IKE SA.
    fn request(&mut self, now: Instant, ex: u8, payloads: Vec<Payload>, kind: PendingKind) {
        let cur = self.cur();
        self.request_on(now, ex, payloads, kind, cur)
    }

    fn request_on(
        &mut self,
        now: Instant,
        ex: u8,
        payloads: Vec<Payload>,
        kind: PendingKind,
        spis: Spis,
    ) {
        let max = self.cfg.max_message;
        let Some(sa) = sa_mut!(self, spis) else {
            return;
        };
        let id = sa.next_msg_id;
        sa.next_msg_id = sa.next_msg_id.wrapping_add(1);
        let dgrams = sa.protect(ex, false, id, &payloads, max, &mut *self.rng);
        let spis = (sa.spi_i, sa.spi_r);
        for d in &dgrams {
            self.send(d);
        }
        self.pending = Some(Pending {
            spis,
            msg_id: id,
            exchange: ex,
            datagrams: dgrams,
            tries: 0,
            next: now + self.cfg.retransmit_timeout,
            kind,
        });
    }

    fn respond(&mut self, spis: Spis, ex: u8, msg_id: u32, payloads: &[Payload]) {
        let max = self.cfg.max_message;
        let Some(sa) = sa_mut!(self, spis) else {
            return;
        };
        let dgrams = sa.protect(ex, true, msg_id, payloads, max, &mut *self.rng);
        sa.peer_msg_id = msg_id.wrapping_add(1);
        sa.last_response = Some((msg_id, dgrams.clone()));
        for d in &dgrams {
            self.send(d);
        }
    }

    /// Rekeys a Child SA (by inbound SPI) as soon as no other exchange is outstanding.
    pub fn rekey_child(&mut self, now: Instant, spi_in: u32) {
        self.tasks.push_back(Task::RekeyChild(spi_in));
        self.run_tasks(now);
    }

    /// Rekeys the IKE SA.
    pub fn rekey_ike(&mut self, now: Instant) {
        self.tasks.push_back(Task::RekeyIke);
        self.run_tasks(now);
    }

    /// Deletes one Child SA.
    pub fn delete_child(&mut self, now: Instant, spi_in: u32) {
        self.tasks.push_back(Task::DeleteChild(spi_in));
        self.run_tasks(now);
    }

    /// Deletes the IKE SA and with it every Child SA.
    pub fn close_connection(&mut self, now: Instant) {
        if self.phase == Phase::Established {
            self.tasks.push_back(Task::DeleteIke);
            self.run_tasks(now);
        } else {
            self.close("closed locally".into());
        }
    }

    /// Sends a liveness check now.
    /// Authentic ESP arrived from the peer: it is alive, so liveness checks wait for `dpd`
    /// after this too (RFC 7296 §2.4 asks for them when only outgoing traffic is seen;
    /// strongSwan sends none while packets arrive). Call it at most once per batch of packets.
    pub fn note_inbound_esp(&mut self, now: Instant) {
        if now > self.last_rx {
            self.last_rx = now;
        }
    }

    pub fn send_dpd(&mut self, now: Instant) {
        self.tasks.push_back(Task::Dpd);
        self.run_tasks(now);
    }

    fn run_tasks(&mut self, now: Instant) {
        while self.phase == Phase::Established && self.pending.is_none() {
            let Some(task) = self.tasks.pop_front() else {
                return;
            };
            match task {
                Task::Dpd => {
                    self.request(now, exchange::INFORMATIONAL, vec![], PendingKind::Dpd);
                }
                Task::DeleteIke => {
                    let p = vec![Payload::Delete(Delete {
                        protocol: protocol::IKE,
                        spi_size: 0,
                        spis: vec![],
                    })];
                    self.request(now, exchange::INFORMATIONAL, p, PendingKind::DeleteIke);
                }
                Task::DeleteRedundant => {
                    let Some(spis) = self.redundant.as_ref().map(|r| (r.0.spi_i, r.0.spi_r)) else {
                        continue;
                    };
                    let p = vec![Payload::Delete(Delete {
                        protocol: protocol::IKE,
                        spi_size: 0,
                        spis: vec![],
                    })];
                    self.request_on(
                        now,
                        exchange::INFORMATIONAL,
                        p,
                        PendingKind::DeleteIke,
                        spis,
                    );
                }
                Task::DeleteChild(spi) => {
                    let Some(c) = self.children.iter_mut().find(|c| c.sa.spi_in == spi) else {
                        continue;
                    };
                    c.state = ChildState::Deleting;
                    let p = vec![Payload::Delete(Delete {
                        protocol: protocol::ESP,
                        spi_size: 4,
                        spis: vec![spi.to_be_bytes().to_vec()],
                    })];
                    self.request(
                        now,
                        exchange::INFORMATIONAL,
                        p,
                        PendingKind::DeleteChildren(vec![spi]),
                    );
                }
                Task::RekeyChild(spi) => {
                    let Some(c) = self.children.iter().find(|c| c.sa.spi_in == spi) else {
                        continue;
                    };
                    if c.state != ChildState::Installed {
                        continue;
                    }
                    let (lts, rts) = (c.sa.local_ts.clone(), c.sa.remote_ts.clone());
                    let group = self
                        .cfg
                        .esp_proposals
                        .first()
                        .and_then(|p| p.dh.first().copied());
                    self.start_create_child(now, Some(spi), group, lts, rts);
                }
                Task::RekeyIke => {
                    let Some(group) = self.sa.as_ref().and_then(|s| s.suite.dh) else {
                        continue;
                    };
                    if self.old_sa.is_some() || self.collision.is_some() {
                        // The previous rekey is still winding up; try again shortly.
                        self.ike_rekey_at = Some(now + Duration::from_secs(5));
                        continue;
                    }
                    self.start_ike_rekey(now, group);
                }
            }
        }
    }

    fn start_create_child(
        &mut self,
        now: Instant,
        rekey_of: Option<u32>,
        group: Option<DhGroup>,
        local_ts: Vec<TrafficSelector>,
        remote_ts: Vec<TrafficSelector>,
    ) {
        let spi_in = self.random_spi32();
        let nonce = self.nonce();
        let dh = group.map(|g| DhPrivate::generate(g, &mut *self.rng));
        let proposals = self.cfg.esp_proposals.clone();
        let mut p = Vec::new();
        if let Some(old) = rekey_of {
            if let Some(c) = self.children.iter_mut().find(|c| c.sa.spi_in == old) {
                c.state = ChildState::Rekeying;
            }
            p.push(Payload::Notify(Notify {
                protocol: protocol::ESP,
                spi: old.to_be_bytes().to_vec(),
                ty: notify::REKEY_SA,
                data: vec![],
            }));
        }
        p.push(Payload::Sa(ProposalSpec::to_wire(
            &proposals,
            &spi_in.to_be_bytes(),
        )));
        p.push(Payload::Nonce(nonce.clone()));
        if let Some(d) = &dh {
            p.push(Payload::Ke {
                group: d.group().ikev2_id(),
                data: d.public().to_vec(),
            });
        }
        p.push(Payload::TsI(local_ts.clone()));
        p.push(Payload::TsR(remote_ts.clone()));
        let offer = ChildOffer {
            spi_in,
            dh,
            nonce,
            proposals,
            local_ts,
            remote_ts,
        };
        self.request(
            now,
            exchange::CREATE_CHILD_SA,
            p,
            PendingKind::CreateChild { offer, rekey_of },
        );
    }

    fn start_ike_rekey(&mut self, now: Instant, group: DhGroup) {
        let spi_i = self.random_spi64();
        let nonce = self.nonce();
        let dh = DhPrivate::generate(group, &mut *self.rng);
        // Offer the configured proposals, with the group in use first so that the KE fits.
        let mut props = self.cfg.ike_proposals.clone();
        for pr in &mut props {
            if let Some(i) = pr.dh.iter().position(|g| *g == group) {
                let g = pr.dh.remove(i);
                pr.dh.insert(0, g);
            }
        }
        let p = vec![
            Payload::Sa(ProposalSpec::to_wire(&props, &spi_i.to_be_bytes())),
            Payload::Nonce(nonce.clone()),
            Payload::Ke {
                group: group.ikev2_id(),
                data: dh.public().to_vec(),
            },
        ];
        self.request(
            now,
            exchange::CREATE_CHILD_SA,
            p,
            PendingKind::IkeRekey { spi_i, dh, nonce },
        );
    }

    // -----------------------------------------------------------------------------------
    // Timers

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.phase == Phase::Closed {
            return;
        }
        if let Some(p) = &mut self.pending {
            if now >= p.next {
                if p.tries >= self.cfg.retransmit_tries {
                    let ex = p.exchange;
                    let dpd = matches!(p.kind, PendingKind::Dpd);
                    let spis = p.spis;
                    if matches!(p.kind, PendingKind::DeleteIke) && spis != self.cur() {
                        // Deleting a replaced or redundant IKE SA the peer no longer
                        // answers on: forget it, the current one is unaffected.
                        self.drop_aux(spis);
                        self.run_tasks(now);
                        return;
                    }
                    self.pending = None;
                    let e = Error::Timeout { exchange: ex };
                    let reason = if dpd {
                        "dead peer: no answer to liveness checks".to_string()
                    } else {
                        e.to_string()
                    };
                    self.fail(e);
                    self.close(reason);
                    return;
                }
                p.tries += 1;
                let backoff = self.cfg.retransmit_timeout * 2u32.saturating_pow(p.tries.min(6));
                p.next = now + backoff;
                let d = p.datagrams.clone();
                for x in &d {
                    self.send(x);
                }
            }
        }
        if self.phase == Phase::AwaitAuth {
            if let Some(a) = &self.auth {
                if now >= a.since + self.cfg.half_open_timeout {
                    self.sa = None;
                    self.auth = None;
                    self.fatal(Error::HalfOpenTimeout);
                    return;
                }
            }
        }
        if let Some(l) = &self.late_rekey {
            if now >= l.until {
                let spis = l.spis;
                self.late_rekey = None;
                self.drop_aux(spis);
            }
        }
        if let Some((r, until)) = &self.redundant {
            let spis = (r.spi_i, r.spi_r);
            if now >= *until {
                self.drop_aux(spis);
            }
        }
        if self.phase == Phase::Established && self.pending.is_none() {
            if let Some(d) = self.cfg.dpd {
                if now >= self.last_rx + d && !self.tasks.contains(&Task::Dpd) {
                    self.tasks.push_back(Task::Dpd);
                }
            }
            if self.ike_rekey_at.is_some_and(|t| now >= t) {
                self.ike_rekey_at = None;
                self.tasks.push_back(Task::RekeyIke);
            }
            let due: Vec<u32> = self
                .children
                .iter_mut()
                .filter(|c| {
                    c.state == ChildState::Installed && c.rekey_at.is_some_and(|t| now >= t)
                })
                .map(|c| {
                    c.rekey_at = None;
                    c.sa.spi_in
                })
                .collect();
            for s in due {
                self.tasks.push_back(Task::RekeyChild(s));
            }
            self.run_tasks(now);
        }
    }

    // -----------------------------------------------------------------------------------
    // Receiving

    /// A UDP payload arrived from `src` on our address `dst`.
    pub fn handle_datagram(&mut self, now: Instant, src: SocketAddr, dst: SocketAddr, data: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        let (data, marker) = match data {
            [0, 0, 0, 0, rest @ ..] => (rest, true),
            _ => (data, false),
        };
        let raw = match wire::parse_message(data) {
            Ok(r) => r,
            Err(e) => {
                // Unauthenticated junk gets no answer, except a version we cannot speak on
                // an IKE_SA_INIT request (RFC 7296 §2.5).
                if let (wire::ParseError::MajorVersion(_), Some(b)) =
                    (&e, data.get(..wire::HEADER_LEN))
                {
                    if b[18] == exchange::IKE_SA_INIT && b[19] & flags::RESPONSE == 0 {
                        self.plain_error(src, dst, b, notify::INVALID_MAJOR_VERSION, vec![]);
                    }
                }
                return;
            }
        };
        let h = raw.header;
        if h.exchange == exchange::IKE_SA_INIT {
            if h.is_response() {
                self.on_init_response(now, src, dst, &raw, data);
            } else {
                self.on_init_request(now, src, dst, &raw, data, marker);
            }
            return;
        }
        let spis = (h.spi_i, h.spi_r);
        if raw.encrypted.is_none() {
            return;
        }
        let Some(sa) = sa_mut!(self, spis) else {
            return;
        };
        // The I flag must name the peer's role in this IKE SA.
        if h.is_initiator() == sa.initiator {
            return;
        }
        if h.is_response() {
            let ok = self
                .pending
                .as_ref()
                .is_some_and(|p| p.msg_id == h.message_id && p.spis == spis)
                || self
                    .late_rekey
                    .as_ref()
                    .is_some_and(|l| l.msg_id == h.message_id && l.spis == spis);
            if !ok {
                return;
            }
        } else if h.message_id != sa.peer_msg_id {
            let retransmit = sa
                .last_response
                .as_ref()
                .is_some_and(|(id, _)| *id == h.message_id);
            if retransmit {
                // Authenticate before answering; for fragments answer on the first only.
                let first = raw
                    .encrypted
                    .is_some_and(|e| e.fragment.is_none_or(|f| f.0 == 1));
                if first
                    && sa
                        .rx
                        .open(data, raw.encrypted.map_or(0, |e| e.body))
                        .is_ok()
                {
                    let d = sa
                        .last_response
                        .as_ref()
                        .map(|x| x.1.clone())
                        .unwrap_or_default();
                    for x in &d {
                        self.send(x);
                    }
                }
            }
            return;
        }
        let payloads = match sa.unprotect(&raw, data) {
            Ok(Some(p)) => p,
            Ok(None) => return,
            Err(()) => return,
        };
        self.last_rx = now;
        if marker {
            self.nat_t = true;
        }
        // Follow the peer's address (NAT mapping changes, the move to 4500).
        if self.cfg.role == Role::Responder || self.nat_t {
            self.local = dst;
            self.remote = src;
        }
        if h.is_response() {
            self.on_response(now, payloads, spis);
        } else {
            self.on_request(now, &h, payloads, spis);
        }
        self.run_tasks(now);
    }

    fn plain_error(
        &mut self,
        src: SocketAddr,
        dst: SocketAddr,
        hdr: &[u8],
        ty: u16,
        data: Vec<u8>,
    ) {
        let spi_i = u64::from_be_bytes(hdr[0..8].try_into().unwrap_or([0; 8]));
        let msg = wire::emit_plain(
            Header {
                spi_i,
                spi_r: 0,
                next_payload: 0,
                version: 0x20,
                exchange: exchange::IKE_SA_INIT,
                flags: flags::RESPONSE,
                message_id: 0,
                length: 0,
            },
            &[Payload::Notify(Notify::new(ty, data))],
        );
        let mut p = Vec::new();
        if dst.port() != 500 {
            p.extend_from_slice(&[0, 0, 0, 0]);
        }
        p.extend_from_slice(&msg);
        self.transmits.push_back(Transmit {
            src: dst,
            dst: src,
            payload: p,
        });
    }

    fn cookie_for(&self, ni: &[u8], src: SocketAddr, spi_i: u64) -> Vec<u8> {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.cookie_secret);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(ni);
        match src.ip() {
            IpAddr::V4(a) => ctx.update(&a.octets()),
            IpAddr::V6(a) => ctx.update(&a.octets()),
        }
        ctx.update(&spi_i.to_be_bytes());
        let mut c = vec![0u8]; // secret version
        c.extend_from_slice(ctx.sign().as_ref());
        c
    }

    fn on_init_request(
        &mut self,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        raw: &RawMessage,
        bytes: &[u8],
        marker: bool,
    ) {
        let h = raw.header;
        if let Some((req, resp)) = &self.init_cache {
            if req == bytes {
                let resp = resp.clone();
                self.send(&resp);
            }
            return;
        }
        if self.cfg.role != Role::Responder || self.phase != Phase::Idle {
            return;
        }
        if h.message_id != 0 || h.spi_r != 0 || !h.is_initiator() {
            return;
        }
        let p = &raw.payloads;
        let (Some(props), Some((group, ke)), Some(ni)) = (sa_of(p), ke_of(p), nonce_of(p)) else {
            self.plain_error(src, dst, bytes, notify::INVALID_SYNTAX, vec![]);
            self.fail(Error::InvalidSyntax(
                "IKE_SA_INIT without SA, KE or Nonce".into(),
            ));
            return;
        };
        if self.cfg.require_cookie {
            let want = self.cookie_for(&ni, src, h.spi_i);
            let ok = matches!(p.first(), Some(Payload::Notify(nt)) if nt.ty == notify::COOKIE && crypto::ct_eq(&nt.data, &want));
            if !ok {
                self.plain_error(src, dst, bytes, notify::COOKIE, want);
                return;
            }
        }
        let Some(sel) = proposal::select(&self.cfg.ike_proposals, props, false) else {
            self.plain_error(src, dst, bytes, notify::NO_PROPOSAL_CHOSEN, vec![]);
            self.fail(Error::NoProposalChosen { ike: true });
            return;
        };
        let Some(chosen) = sel.suite.dh else {
            return;
        };
        if chosen.ikev2_id() != group {
            self.plain_error(
                src,
                dst,
                bytes,
                notify::INVALID_KE_PAYLOAD,
                chosen.ikev2_id().to_be_bytes().to_vec(),
            );
            return;
        }
        let dh = DhPrivate::generate(chosen, &mut *self.rng);
        let Ok(shared) = dh.shared(ke) else {
            self.plain_error(src, dst, bytes, notify::INVALID_SYNTAX, vec![]);
            self.fail(Error::KeyExchange);
            return;
        };
        let spi_r = self.random_spi64();
        let nr = self.nonce();
        self.local = dst;
        self.remote = src;
        // NAT detection (RFC 7296 §2.23).
        if let Some(nt) = wire::find_notify(p, notify::NAT_DETECTION_SOURCE_IP) {
            self.nat_remote = nt.data != nat_hash(h.spi_i, 0, src);
        }
        if let Some(nt) = wire::find_notify(p, notify::NAT_DETECTION_DESTINATION_IP) {
            self.nat_local = nt.data != nat_hash(h.spi_i, 0, dst);
        }
        let peer_frag = wire::find_notify(p, notify::IKEV2_FRAGMENTATION_SUPPORTED).is_some();
        let mut src_hash = nat_hash(h.spi_i, spi_r, dst);
        if self.cfg.force_encap {
            self.rng.fill(&mut src_hash);
            self.nat_local = true;
        }
        let mut out = vec![
            Payload::Sa(vec![sel.suite.to_wire(Kind::Ike, sel.num, &[])]),
            Payload::Ke {
                group,
                data: dh.public().to_vec(),
            },
            Payload::Nonce(nr.clone()),
            Payload::Notify(Notify::new(notify::NAT_DETECTION_SOURCE_IP, src_hash)),
            Payload::Notify(Notify::new(
                notify::NAT_DETECTION_DESTINATION_IP,
                nat_hash(h.spi_i, spi_r, src),
            )),
        ];
        if peer_frag {
            out.push(n(notify::IKEV2_FRAGMENTATION_SUPPORTED));
        }
        self.peer_rfc7427 = announces_sha256(p);
        if let Some(t) = &self.cfg.trust {
            // Ask for the initiator's certificate (strongSwan sends it when asked).
            out.push(Payload::CertReq {
                encoding: cert::X509_SIGNATURE,
                data: t.certreq().to_vec(),
            });
        }
        if self.uses_certs() {
            out.push(sig_hashes_notify());
        }
        let resp = wire::emit_plain(
            Header {
                spi_i: h.spi_i,
                spi_r,
                next_payload: 0,
                version: 0x20,
                exchange: exchange::IKE_SA_INIT,
                flags: flags::RESPONSE,
                message_id: 0,
                length: 0,
            },
            &out,
        );
        let suite = sel.suite;
        let prf = suite.prf.unwrap_or(Prf::HmacSha256);
        let seed = crypto::skeyseed(prf, &ni, &nr, &shared);
        let keys = crypto::derive_ike_keys(&suite, &seed, &ni, &nr, h.spi_i, spi_r);
        let Some(mut sa) = IkeSa::new(suite, keys, h.spi_i, spi_r, false, peer_frag) else {
            return;
        };
        sa.peer_msg_id = 1;
        self.sa = Some(sa);
        self.nat_t = marker;
        self.send(&resp);
        self.init_cache = Some((bytes.to_vec(), resp.clone()));
        self.auth = Some(AuthCtx {
            init_request: bytes.to_vec(),
            init_response: resp,
            ni,
            nr,
            since: now,
        });
        self.last_rx = now;
        self.phase = Phase::AwaitAuth;
    }

    fn on_init_response(
        &mut self,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        raw: &RawMessage,
        bytes: &[u8],
    ) {
        if self.phase != Phase::InitSent {
            return;
        }
        let h = raw.header;
        let Some(init) = self.init.as_mut() else {
            return;
        };
        if h.spi_i != init.spi_i || h.message_id != 0 || h.is_initiator() {
            return;
        }
        let p = &raw.payloads;
        if let Some(c) = wire::find_notify(p, notify::COOKIE) {
            if init.retries < 3 && !c.data.is_empty() && c.data.len() <= 64 {
                init.retries += 1;
                init.cookie = Some(c.data.clone());
                self.send_init(now);
            }
            return;
        }
        if let Some(nt) = wire::find_notify(p, notify::INVALID_KE_PAYLOAD) {
            let wanted = (nt.data.len() == 2)
                .then(|| u16::from_be_bytes([nt.data[0], nt.data[1]]))
                .and_then(DhGroup::from_id);
            let offered =
                wanted.is_some_and(|g| self.cfg.ike_proposals.iter().any(|s| s.dh.contains(&g)));
            match wanted {
                Some(g) if offered && init.retries < 3 && g != init.dh.group() => {
                    init.retries += 1;
                    init.dh = DhPrivate::generate(g, &mut *self.rng);
                    self.send_init(now);
                }
                _ => self.fatal(Error::PeerRefused {
                    exchange: exchange::IKE_SA_INIT,
                    notify: notify::INVALID_KE_PAYLOAD,
                }),
            }
            return;
        }
        if let Some(nt) = wire::error_notify(p) {
            let e = Error::PeerRefused {
                exchange: exchange::IKE_SA_INIT,
                notify: nt.ty,
            };
            self.fatal(e);
            return;
        }
        let (Some(props), Some((group, ke)), Some(nr)) = (sa_of(p), ke_of(p), nonce_of(p)) else {
            self.fatal(Error::InvalidResponse(
                "IKE_SA_INIT response without SA, KE or Nonce",
            ));
            return;
        };
        if h.spi_r == 0 {
            self.fatal(Error::InvalidResponse(
                "IKE_SA_INIT response with a zero SPI",
            ));
            return;
        }
        let Some(sel) = proposal::check_response(&self.cfg.ike_proposals, props, false) else {
            self.fatal(Error::InvalidResponse(
                "responder chose an IKE proposal we did not offer",
            ));
            return;
        };
        if sel.suite.dh != Some(init.dh.group()) || group != init.dh.group().ikev2_id() {
            self.fatal(Error::InvalidResponse(
                "responder's KE does not match the chosen group",
            ));
            return;
        }
        let Ok(shared) = init.dh.shared(ke) else {
            self.fatal(Error::KeyExchange);
            return;
        };
        let suite = sel.suite;
        let prf = suite.prf.unwrap_or(Prf::HmacSha256);
        let ni = init.nonce.clone();
        let seed = crypto::skeyseed(prf, &ni, &nr, &shared);
        let keys = crypto::derive_ike_keys(&suite, &seed, &ni, &nr, init.spi_i, h.spi_r);
        let peer_frag = wire::find_notify(p, notify::IKEV2_FRAGMENTATION_SUPPORTED).is_some();
        self.peer_rfc7427 = announces_sha256(p);
        let spi_i = init.spi_i;
        let request = init.request.clone();
        if let Some(nt) = wire::find_notify(p, notify::NAT_DETECTION_SOURCE_IP) {
            self.nat_remote = nt.data != nat_hash(spi_i, h.spi_r, src);
        }
        if let Some(nt) = wire::find_notify(p, notify::NAT_DETECTION_DESTINATION_IP) {
            self.nat_local = nt.data != nat_hash(spi_i, h.spi_r, dst);
        }
        if self.cfg.force_encap {
            self.nat_local = true;
        }
        let nat_supported = wire::find_notify(p, notify::NAT_DETECTION_SOURCE_IP).is_some();
        if nat_supported && (self.nat_local || self.nat_remote) && !self.nat_t {
            self.nat_t = true;
            self.local.set_port(4500);
            self.remote.set_port(4500);
        }
        let Some(mut sa) = IkeSa::new(suite, keys, spi_i, h.spi_r, true, peer_frag) else {
            return;
        };
        sa.next_msg_id = 1;
        self.sa = Some(sa);
        self.pending = None;
        let init_response = bytes.to_vec();
        self.auth = Some(AuthCtx {
            init_request: request,
            init_response,
            ni,
            nr,
            since: now,
        });
        self.send_auth(now);
    }

    fn send_auth(&mut self, now: Instant) {
        let (Some(sa), Some(auth)) = (&self.sa, &self.auth) else {
            return;
        };
        let id = self.cfg.local_id.to_payload();
        let signed = self.our_auth(sa.prf, &auth.init_request, &auth.nr, &sa.keys.sk_pi, &id);
        let (certs, auth_payload) = match signed {
            Ok(x) => x,
            Err(e) => {
                self.sa = None;
                self.fatal(Error::AuthenticationFailed(e));
                return;
            }
        };
        let spi_in = self.random_spi32();
        let proposals: Vec<ProposalSpec> = self
            .cfg
            .esp_proposals
            .iter()
            .map(|p| p.without_dh())
            .collect();
        let mut p = vec![Payload::IdI(id)];
        p.extend(certs);
        if let Some(t) = &self.cfg.trust {
            p.push(Payload::CertReq {
                encoding: cert::X509_SIGNATURE,
                data: t.certreq().to_vec(),
            });
        }
        p.push(n(notify::INITIAL_CONTACT));
        if let Some(r) = &self.cfg.remote_id {
            p.push(Payload::IdR(r.to_payload()));
        }
        p.push(auth_payload);
        if self.cfg.request_vip {
            p.push(crate::cp::payload(
                crate::cp::CFG_REQUEST,
                &[
                    (crate::cp::attr::INTERNAL_IP4_ADDRESS, Vec::new()),
                    (crate::cp::attr::INTERNAL_IP4_DNS, Vec::new()),
                ],
            ));
        }
        p.push(Payload::Sa(ProposalSpec::to_wire(
            &proposals,
            &spi_in.to_be_bytes(),
        )));
        p.push(Payload::TsI(self.cfg.local_ts.clone()));
        p.push(Payload::TsR(self.cfg.remote_ts.clone()));
        let offer = ChildOffer {
            spi_in,
            dh: None,
            nonce: Vec::new(),
            proposals,
            local_ts: self.cfg.local_ts.clone(),
            remote_ts: self.cfg.remote_ts.clone(),
        };
        self.phase = Phase::AuthSent;
        self.request(now, exchange::IKE_AUTH, p, PendingKind::Auth(offer));
    }

    fn on_request(&mut self, now: Instant, h: &Header, p: Vec<Payload>, spis: Spis) {
        let cur = spis == self.cur();
        match h.exchange {
            exchange::IKE_AUTH if cur && self.phase == Phase::AwaitAuth => {
                self.on_auth_request(now, h, &p)
            }
            exchange::CREATE_CHILD_SA if cur && self.phase == Phase::Established => {
                self.on_create_child_request(now, h, &p)
            }
            exchange::CREATE_CHILD_SA if !cur => {
                // An IKE SA on its way out (replaced, or redundant after a collision)
                // creates nothing more: RFC 7296 §2.25.2.
                self.respond(
                    spis,
                    h.exchange,
                    h.message_id,
                    &[n(notify::TEMPORARY_FAILURE)],
                );
            }
            exchange::INFORMATIONAL if self.phase == Phase::Established || !cur => {
                self.on_informational_request(now, h, &p, spis)
            }
            _ => {
                // Out-of-place request: answer INVALID_SYNTAX-free, i.e. refuse politely.
                if self.phase == Phase::Established {
                    self.respond(spis, h.exchange, h.message_id, &[n(notify::INVALID_SYNTAX)]);
                }
            }
        }
    }

    fn on_auth_request(&mut self, now: Instant, h: &Header, p: &[Payload]) {
        let idi = find(p, |x| match x {
            Payload::IdI(i) => Some(i.clone()),
            _ => None,
        });
        let auth = find(p, |x| match x {
            Payload::Auth { method, data } => Some((*method, data.clone())),
            _ => None,
        });
        let (Some(idi), Some((method, value)), Some(auth_ctx), Some(sa)) =
            (idi, auth, self.auth.as_ref(), self.sa.as_ref())
        else {
            self.respond(
                self.cur(),
                exchange::IKE_AUTH,
                h.message_id,
                &[n(notify::INVALID_SYNTAX)],
            );
            self.fatal(Error::InvalidSyntax(
                "IKE_AUTH request without IDi or AUTH".into(),
            ));
            return;
        };
        let peer_id = Identity::from_payload(&idi);
        let checked = self.check_peer_auth(
            now,
            p,
            sa.prf,
            (&auth_ctx.init_request, &auth_ctx.nr, &sa.keys.sk_pi),
            &idi,
            (method, &value),
            "peer",
        );
        let id = self.cfg.local_id.to_payload();
        let ours = checked.and_then(|()| {
            self.our_auth(
                sa.prf,
                &auth_ctx.init_response,
                &auth_ctx.ni,
                &sa.keys.sk_pr,
                &id,
            )
        });
        let (certs, our_auth) = match ours {
            Ok(x) => x,
            Err(e) => {
                self.respond(
                    self.cur(),
                    exchange::IKE_AUTH,
                    h.message_id,
                    &[n(notify::AUTHENTICATION_FAILED)],
                );
                self.sa = None;
                self.fatal(Error::AuthenticationFailed(e));
                return;
            }
        };
        let (ni, nr) = (auth_ctx.ni.clone(), auth_ctx.nr.clone());
        let mut out = vec![Payload::IdR(id)];
        out.extend(certs);
        out.push(our_auth);
        // A remote-access client asking for an inner address (CP CFG_REQUEST).
        let wants_vip = crate::cp::find(p).is_some_and(|(t, attrs)| {
            t == crate::cp::CFG_REQUEST
                && attrs
                    .iter()
                    .any(|(a, _)| *a == crate::cp::attr::INTERNAL_IP4_ADDRESS)
        });
        let mut no_address = false;
        if let (true, Some(pool)) = (wants_vip, self.cfg.vip_pool.clone()) {
            match peer_id.as_ref().and_then(|id| pool.assign(id)) {
                Some(a) => {
                    self.peer_vip = Some(a);
                    let mut attrs =
                        vec![(crate::cp::attr::INTERNAL_IP4_ADDRESS, a.octets().to_vec())];
                    attrs.extend(
                        self.cfg
                            .vip_dns
                            .iter()
                            .map(|d| (crate::cp::attr::INTERNAL_IP4_DNS, d.octets().to_vec())),
                    );
                    out.push(crate::cp::payload(crate::cp::CFG_REPLY, &attrs));
                    self.events.push_back(Event::VirtualIp {
                        addr: a,
                        dns: Vec::new(),
                        ours: false,
                    });
                }
                None => no_address = true,
            }
        }
        self.remote_id = peer_id;
        self.phase = Phase::Established;
        self.auth = None;
        self.init_cache = None;
        self.ike_up(now, false);
        if no_address {
            // The pool is exhausted: the IKE SA stands, no Child SA (RFC 7296 §3.15.4).
            out.push(n(notify::INTERNAL_ADDRESS_FAILURE));
            self.respond(self.cur(), exchange::IKE_AUTH, h.message_id, &out);
            self.fail(Error::InvalidSyntax(
                "no inner address left in the pool".into(),
            ));
            return;
        }
        match self.accept_child(p, true, &ni, &nr, None) {
            Ok((child, reply)) => {
                out.extend(reply);
                self.respond(self.cur(), exchange::IKE_AUTH, h.message_id, &out);
                self.install_child(now, child);
            }
            Err((notify_ty, e)) => {
                out.push(n(notify_ty));
                self.respond(self.cur(), exchange::IKE_AUTH, h.message_id, &out);
                self.fail(e);
            }
        }
    }

    fn ike_up(&mut self, now: Instant, rekeyed: bool) {
        let Some(sa) = &self.sa else {
            return;
        };
        self.ike_rekey_at = self.cfg.ike_rekey.map(|d| now + d);
        self.events.push_back(Event::IkeSaUp {
            spi_i: sa.spi_i,
            spi_r: sa.spi_r,
            suite: sa.suite,
            local: self.local,
            remote: self.remote,
            nat_local: self.nat_local,
            nat_remote: self.nat_remote,
            remote_id: self.remote_id.clone(),
            rekeyed,
        });
    }

    /// Responder side of a Child SA negotiation (IKE_AUTH or CREATE_CHILD_SA): selects the
    /// proposal, narrows selectors, runs the optional PFS exchange, derives keys. Returns the
    /// Child SA and the payloads of the answer, or the error notify to send.
    #[allow(clippy::type_complexity)]
    fn accept_child(
        &mut self,
        p: &[Payload],
        in_auth: bool,
        ni: &[u8],
        nr: &[u8],
        rekey_of: Option<u32>,
    ) -> Result<(ChildSa, Vec<Payload>), (u16, Error)> {
        let (Some(props), Some(tsi), Some(tsr)) = (sa_of(p), tsi_of(p), tsr_of(p)) else {
            return Err((
                notify::INVALID_SYNTAX,
                Error::InvalidSyntax("Child SA request without SA, TSi or TSr".into()),
            ));
        };
        if wire::find_notify(p, notify::USE_TRANSPORT_MODE).is_some() {
            return Err((
                notify::NO_PROPOSAL_CHOSEN,
                Error::NoProposalChosen { ike: false },
            ));
        }
        let ours: Vec<ProposalSpec> = if in_auth {
            self.cfg
                .esp_proposals
                .iter()
                .map(|s| s.without_dh())
                .collect()
        } else {
            self.cfg.esp_proposals.clone()
        };
        let Some(sel) = proposal::select(&ours, props, in_auth) else {
            return Err((
                notify::NO_PROPOSAL_CHOSEN,
                Error::NoProposalChosen { ike: false },
            ));
        };
        let Some(spi_out) = spi32(&sel.spi) else {
            return Err((
                notify::INVALID_SYNTAX,
                Error::InvalidSyntax("ESP SPI not 4 octets".into()),
            ));
        };
        // A peer (or we) with an inner address gets exactly that address on its side.
        let vip_ts = |a: std::net::Ipv4Addr| {
            ts::from_cidr(IpAddr::V4(a), 32)
                .into_iter()
                .collect::<Vec<_>>()
        };
        let remote_policy = self
            .peer_vip
            .map_or_else(|| self.cfg.remote_ts.clone(), vip_ts);
        let local_policy = self
            .own_vip
            .map_or_else(|| self.cfg.local_ts.clone(), vip_ts);
        let remote_ts = ts::narrow(tsi, &remote_policy);
        let local_ts = ts::narrow(tsr, &local_policy);
        if remote_ts.is_empty() || local_ts.is_empty() {
            return Err((notify::TS_UNACCEPTABLE, Error::TsUnacceptable));
        }
        let mut reply_ke = None;
        let mut shared = None;
        if let Some(g) = sel.suite.dh {
            match ke_of(p) {
                Some((grp, data)) if grp == g.ikev2_id() => {
                    let dh = DhPrivate::generate(g, &mut *self.rng);
                    let Ok(s) = dh.shared(data) else {
                        return Err((notify::INVALID_SYNTAX, Error::KeyExchange));
                    };
                    shared = Some(s);
                    reply_ke = Some(Payload::Ke {
                        group: grp,
                        data: dh.public().to_vec(),
                    });
                }
                _ => {
                    // Tell the initiator which group to use (RFC 7296 §1.3).
                    return Err((
                        notify::INVALID_KE_PAYLOAD,
                        Error::InvalidResponse("peer's KE group differs from the chosen PFS group"),
                    ));
                }
            }
        }
        let sa = self
            .sa
            .as_ref()
            .ok_or((notify::INVALID_SYNTAX, Error::InvalidResponse("no IKE SA")))?;
        let km = crypto::child_keymat(
            sa.prf,
            &sa.keys.sk_d,
            shared.as_deref().map(|v| &v[..]),
            ni,
            nr,
            &sel.suite,
        );
        let half = sel.suite.child_keymat_len();
        let spi_in = self.random_spi32();
        let child = ChildSa {
            spi_in,
            spi_out,
            suite: sel.suite,
            // We answer: the exchange's initiator-to-responder keys are our inbound keys.
            keys_in: Zeroizing::new(km[..half].to_vec()),
            keys_out: Zeroizing::new(km[half..].to_vec()),
            local_ts: local_ts.clone(),
            remote_ts: remote_ts.clone(),
            encap: self.nat_t,
            local: self.local,
            remote: self.remote,
            rekey_of,
        };
        let mut reply = vec![Payload::Sa(vec![sel.suite.to_wire(
            Kind::Esp,
            sel.num,
            &spi_in.to_be_bytes(),
        )])];
        if !in_auth {
            reply.push(Payload::Nonce(nr.to_vec()));
            if let Some(k) = reply_ke {
                reply.push(k);
            }
        }
        reply.push(Payload::TsI(remote_ts));
        reply.push(Payload::TsR(local_ts));
        Ok((child, reply))
    }

    fn install_child(&mut self, now: Instant, sa: ChildSa) {
        self.children.push(Child {
            sa: sa.clone(),
            state: ChildState::Installed,
            rekey_at: self.cfg.child_rekey.map(|d| now + d),
            collision: None,
        });
        self.events.push_back(Event::ChildSaUp(sa));
    }

    fn on_create_child_request(&mut self, now: Instant, h: &Header, p: &[Payload]) {
        let Some(ni) = nonce_of(p) else {
            self.respond(
                self.cur(),
                h.exchange,
                h.message_id,
                &[n(notify::INVALID_SYNTAX)],
            );
            return;
        };
        let is_ike = sa_of(p).is_some_and(|s| s.iter().any(|x| x.protocol == protocol::IKE));
        if is_ike {
            self.on_ike_rekey_request(now, h, p, ni);
            return;
        }
        let rekey = wire::find_notify(p, notify::REKEY_SA).cloned();
        let mut rekey_of = None;
        if let Some(r) = &rekey {
            let Some(spi) = spi32(&r.spi) else {
                self.respond(
                    self.cur(),
                    h.exchange,
                    h.message_id,
                    &[n(notify::INVALID_SYNTAX)],
                );
                return;
            };
            match self.children.iter().find(|c| c.sa.spi_out == spi) {
                None => {
                    self.respond(
                        self.cur(),
                        h.exchange,
                        h.message_id,
                        &[Payload::Notify(Notify {
                            protocol: protocol::ESP,
                            spi: r.spi.clone(),
                            ty: notify::CHILD_SA_NOT_FOUND,
                            data: vec![],
                        })],
                    );
                    return;
                }
                Some(c) if matches!(c.state, ChildState::Deleting | ChildState::Rekeyed) => {
                    self.respond(
                        self.cur(),
                        h.exchange,
                        h.message_id,
                        &[n(notify::TEMPORARY_FAILURE)],
                    );
                    return;
                }
                Some(c) => rekey_of = Some(c.sa.spi_in),
            }
        }
        let nr = self.nonce();
        match self.accept_child(p, false, &ni, &nr, rekey_of) {
            Ok((child, reply)) => {
                self.respond(self.cur(), h.exchange, h.message_id, &reply);
                if let Some(old) = rekey_of {
                    if let Some(c) = self.children.iter_mut().find(|c| c.sa.spi_in == old) {
                        if c.state == ChildState::Rekeying {
                            c.collision = Some((child.spi_in, ni.clone(), nr.clone()));
                        }
                    }
                }
                self.install_child(now, child);
            }
            Err((ty, e)) => {
                let data = if ty == notify::INVALID_KE_PAYLOAD {
                    let g =
                        proposal::select(&self.cfg.esp_proposals, sa_of(p).unwrap_or(&[]), false)
                            .and_then(|s| s.suite.dh)
                            .map_or(0, |g| g.ikev2_id());
                    g.to_be_bytes().to_vec()
                } else {
                    vec![]
                };
                self.respond(
                    self.cur(),
                    h.exchange,
                    h.message_id,
                    &[Payload::Notify(Notify::new(ty, data))],
                );
                if ty != notify::INVALID_KE_PAYLOAD {
                    self.fail(e);
                }
            }
        }
    }

    fn on_ike_rekey_request(&mut self, now: Instant, h: &Header, p: &[Payload], ni: Vec<u8>) {
        // Our own IKE rekey outstanding on this SA: a simultaneous rekey (RFC 7296 §2.8.2).
        // Both exchanges complete; which new IKE SA survives is decided when ours ends.
        let colliding = matches!(
            &self.pending,
            Some(Pending { kind: PendingKind::IkeRekey { .. }, spis, .. }) if *spis == self.cur()
        );
        // A previous rekey (or collision) not yet wound up: one at a time (§2.25.2).
        let busy = self.old_sa.is_some() || self.collision.is_some();
        let child_rekeying = self
            .children
            .iter()
            .any(|c| c.state == ChildState::Rekeying)
            && self.pending.is_some();
        if busy || child_rekeying {
            self.respond(
                self.cur(),
                h.exchange,
                h.message_id,
                &[n(notify::TEMPORARY_FAILURE)],
            );
            return;
        }
        let props = sa_of(p).unwrap_or(&[]);
        let Some(sel) = proposal::select(&self.cfg.ike_proposals, props, false) else {
            self.respond(
                self.cur(),
                h.exchange,
                h.message_id,
                &[n(notify::NO_PROPOSAL_CHOSEN)],
            );
            self.fail(Error::NoProposalChosen { ike: true });
            return;
        };
        let Some(g) = sel.suite.dh else {
            return;
        };
        let Some(new_spi_i) = spi64(&sel.spi) else {
            self.respond(
                self.cur(),
                h.exchange,
                h.message_id,
                &[n(notify::INVALID_SYNTAX)],
            );
            return;
        };
        let ke = match ke_of(p) {
            Some((grp, data)) if grp == g.ikev2_id() => data.to_vec(),
            _ => {
                self.respond(
                    self.cur(),
                    h.exchange,
                    h.message_id,
                    &[Payload::Notify(Notify::new(
                        notify::INVALID_KE_PAYLOAD,
                        g.ikev2_id().to_be_bytes().to_vec(),
                    ))],
                );
                return;
            }
        };
        let dh = DhPrivate::generate(g, &mut *self.rng);
        let Ok(shared) = dh.shared(&ke) else {
            self.respond(
                self.cur(),
                h.exchange,
                h.message_id,
                &[n(notify::INVALID_SYNTAX)],
            );
            return;
        };
        let nr = self.nonce();
        let new_spi_r = self.random_spi64();
        let Some(old) = self.sa.as_ref() else {
            return;
        };
        let seed = crypto::skeyseed_rekey(old.prf, &old.keys.sk_d, &shared, &ni, &nr);
        let keys = crypto::derive_ike_keys(&sel.suite, &seed, &ni, &nr, new_spi_i, new_spi_r);
        let peer_frag = old.peer_frag;
        let reply = vec![
            Payload::Sa(vec![sel.suite.to_wire(
                Kind::Ike,
                sel.num,
                &new_spi_r.to_be_bytes(),
            )]),
            Payload::Nonce(nr),
            Payload::Ke {
                group: g.ikev2_id(),
                data: dh.public().to_vec(),
            },
        ];
        let nr_kept = match &reply[1] {
            Payload::Nonce(x) => x.clone(),
            _ => Vec::new(),
        };
        self.respond(self.cur(), h.exchange, h.message_id, &reply);
        let Some(new) = IkeSa::new(sel.suite, keys, new_spi_i, new_spi_r, false, peer_frag) else {
            return;
        };
        if colliding {
            // Keep it apart until our own exchange tells which SA survives.
            self.collision = Some(IkeCollision {
                sa: Some(new),
                ni,
                nr: nr_kept,
            });
            return;
        }
        // The old SA stays until the peer deletes it.
        self.old_sa = self.sa.replace(new);
        self.ike_up(now, true);
    }

    /// The peer's new IKE SA from a collision becomes ours; the one it replaces stays as
    /// `old_sa` until it is deleted. False if there is none to adopt.
    fn adopt_collision(&mut self, now: Instant) -> bool {
        let Some(new) = self.collision.take().and_then(|c| c.sa) else {
            return false;
        };
        self.old_sa = self.sa.replace(new);
        self.ike_up(now, true);
        true
    }

    /// The peer deletes the IKE SA our rekey is outstanding on, having answered our rekey
    /// before it saw its own exchange collide (so it never learnt of the collision) or having
    /// won the collision: "reply as usual, and forget its own rekeying request" (RFC 7296
    /// §2.25.2); the peer's new IKE SA becomes ours.
    fn adopt_collision_on_delete(&mut self, now: Instant) -> bool {
        let ours_pending = matches!(
            &self.pending,
            Some(Pending { kind: PendingKind::IkeRekey { .. }, spis, .. }) if *spis == self.cur()
        );
        if !ours_pending || self.collision.as_ref().is_none_or(|c| c.sa.is_none()) {
            return false;
        }
        if let Some(Pending {
            spis,
            msg_id,
            kind: PendingKind::IkeRekey { spi_i, dh, nonce },
            ..
        }) = self.pending.take()
        {
            self.late_rekey = Some(LateRekey {
                spis,
                msg_id,
                spi_i,
                dh,
                ni: nonce,
                until: now + self.cfg.retransmit_timeout * 2,
            });
        }
        self.adopt_collision(now)
    }

    fn on_informational_request(&mut self, now: Instant, h: &Header, p: &[Payload], spis: Spis) {
        let old = spis != self.cur();
        let mut reply = Vec::new();
        let mut close_reason = None;
        if wire::find_notify(p, notify::AUTHENTICATION_FAILED).is_some() {
            self.respond(spis, h.exchange, h.message_id, &[]);
            self.fatal(Error::PeerRefused {
                exchange: exchange::IKE_AUTH,
                notify: notify::AUTHENTICATION_FAILED,
            });
            return;
        }
        for x in p {
            let Payload::Delete(d) = x else {
                continue;
            };
            match d.protocol {
                protocol::IKE => {
                    if old {
                        // A replaced, colliding or redundant IKE SA: only it goes.
                        self.respond(spis, h.exchange, h.message_id, &[]);
                        self.drop_aux(spis);
                        return;
                    }
                    if self.adopt_collision_on_delete(now) {
                        // The IKE SA the peer deleted was the one our rekey replaced; its
                        // keys stay for a moment in case our own answer still arrives.
                        self.respond(spis, h.exchange, h.message_id, &[]);
                        return;
                    }
                    close_reason = Some("deleted by peer".to_string());
                }
                protocol::ESP => {
                    let mut ours = Vec::new();
                    for s in d.spis.iter().filter_map(|s| spi32(s)) {
                        if let Some(i) = self.children.iter().position(|c| c.sa.spi_out == s) {
                            let c = self.children.remove(i);
                            if c.state != ChildState::Deleting {
                                ours.push(c.sa.spi_in.to_be_bytes().to_vec());
                            }
                            self.events.push_back(Event::ChildSaDown {
                                spi_in: c.sa.spi_in,
                                spi_out: c.sa.spi_out,
                                reason: "deleted by peer",
                            });
                        }
                    }
                    if !ours.is_empty() {
                        reply.push(Payload::Delete(Delete {
                            protocol: protocol::ESP,
                            spi_size: 4,
                            spis: ours,
                        }));
                    }
                }
                _ => {}
            }
        }
        self.respond(spis, h.exchange, h.message_id, &reply);
        if let Some(r) = close_reason {
            self.close(r);
        }
    }

    fn on_response(&mut self, now: Instant, p: Vec<Payload>, spis: Spis) {
        let old = spis != self.cur();
        if self.late_rekey.as_ref().is_some_and(|l| l.spis == spis) {
            if let Some(l) = self.late_rekey.take() {
                self.on_late_ike_rekey_response(now, &p, l);
            }
            return;
        }
        let Some(pending) = self.pending.take() else {
            return;
        };
        match pending.kind {
            PendingKind::Init => {}
            PendingKind::Auth(offer) => self.on_auth_response(now, &p, offer),
            PendingKind::CreateChild { offer, rekey_of } => {
                self.on_create_child_response(now, &p, offer, rekey_of)
            }
            PendingKind::IkeRekey { spi_i, dh, nonce } => {
                self.on_ike_rekey_response(now, &p, spi_i, dh, nonce)
            }
            PendingKind::DeleteChildren(spis) => {
                for s in spis {
                    if let Some(i) = self.children.iter().position(|c| c.sa.spi_in == s) {
                        let c = self.children.remove(i);
                        self.events.push_back(Event::ChildSaDown {
                            spi_in: c.sa.spi_in,
                            spi_out: c.sa.spi_out,
                            reason: "deleted",
                        });
                    }
                }
            }
            PendingKind::DeleteIke => {
                if old {
                    self.drop_aux(spis);
                } else {
                    self.close("deleted locally".into());
                }
            }
            PendingKind::Dpd => {}
        }
    }

    fn on_auth_response(&mut self, now: Instant, p: &[Payload], offer: ChildOffer) {
        let idr = find(p, |x| match x {
            Payload::IdR(i) => Some(i.clone()),
            _ => None,
        });
        let auth = find(p, |x| match x {
            Payload::Auth { method, data } => Some((*method, data.clone())),
            _ => None,
        });
        let (Some(idr), Some((method, value))) = (idr, auth) else {
            let ty = wire::error_notify(p).map_or(notify::INVALID_SYNTAX, |n| n.ty);
            self.sa = None;
            self.fatal(Error::PeerRefused {
                exchange: exchange::IKE_AUTH,
                notify: ty,
            });
            return;
        };
        let (Some(sa), Some(actx)) = (&self.sa, &self.auth) else {
            return;
        };
        let peer_id = Identity::from_payload(&idr);
        let checked = self.check_peer_auth(
            now,
            p,
            sa.prf,
            (&actx.init_response, &actx.ni, &sa.keys.sk_pr),
            &idr,
            (method, &value),
            "responder",
        );
        if let Err(why) = checked {
            // Tell the responder (RFC 7296 §2.21.2), then give up.
            let max = self.cfg.max_message;
            if let Some(sa) = self.sa.as_mut() {
                let id = sa.next_msg_id;
                let d = sa.protect(
                    exchange::INFORMATIONAL,
                    false,
                    id,
                    &[n(notify::AUTHENTICATION_FAILED)],
                    max,
                    &mut *self.rng,
                );
                for x in &d {
                    self.send(x);
                }
            }
            self.sa = None;
            self.fatal(Error::AuthenticationFailed(why));
            return;
        }
        let (ni, nr) = (actx.ni.clone(), actx.nr.clone());
        self.remote_id = peer_id;
        self.auth = None;
        self.phase = Phase::Established;
        self.ike_up(now, false);
        if self.cfg.request_vip {
            let reply = crate::cp::find(p).filter(|(t, _)| *t == crate::cp::CFG_REPLY);
            let addr = reply.as_ref().and_then(|(_, a)| {
                crate::cp::v4_values(a, crate::cp::attr::INTERNAL_IP4_ADDRESS)
                    .first()
                    .copied()
            });
            match addr {
                Some(a) => {
                    self.own_vip = Some(a);
                    let dns = reply
                        .map(|(_, at)| crate::cp::v4_values(&at, crate::cp::attr::INTERNAL_IP4_DNS))
                        .unwrap_or_default();
                    self.events.push_back(Event::VirtualIp {
                        addr: a,
                        dns,
                        ours: true,
                    });
                }
                None => {
                    self.fail(Error::InvalidResponse(
                        "the responder assigned no inner address (CP)",
                    ));
                    self.tasks.push_back(Task::DeleteIke);
                    return;
                }
            }
        }
        match self.finish_child(p, offer, &ni, &nr, None, true) {
            Ok(child) => self.install_child(now, child),
            Err(e) => {
                // An IKE SA without its Child SA is of no use to us: delete it.
                self.fail(e);
                self.tasks.push_back(Task::DeleteIke);
            }
        }
    }

    /// Initiator side: checks the responder's Child SA answer and derives keys.
    fn finish_child(
        &mut self,
        p: &[Payload],
        offer: ChildOffer,
        ni: &[u8],
        nr: &[u8],
        rekey_of: Option<u32>,
        in_auth: bool,
    ) -> Result<ChildSa, Error> {
        if let Some(nt) = wire::error_notify(p) {
            return Err(Error::PeerRefused {
                exchange: if in_auth {
                    exchange::IKE_AUTH
                } else {
                    exchange::CREATE_CHILD_SA
                },
                notify: nt.ty,
            });
        }
        let (Some(props), Some(tsi), Some(tsr)) = (sa_of(p), tsi_of(p), tsr_of(p)) else {
            return Err(Error::InvalidResponse(
                "Child SA answer without SA, TSi or TSr",
            ));
        };
        let Some(sel) = proposal::check_response(&offer.proposals, props, in_auth) else {
            return Err(Error::InvalidResponse(
                "responder chose an ESP proposal we did not offer",
            ));
        };
        let Some(spi_out) = spi32(&sel.spi) else {
            return Err(Error::InvalidResponse("ESP SPI not 4 octets"));
        };
        if !ts::all_within(tsi, &offer.local_ts) || !ts::all_within(tsr, &offer.remote_ts) {
            return Err(Error::TsUnacceptable);
        }
        let shared = match (sel.suite.dh, &offer.dh) {
            (None, _) => None,
            (Some(g), Some(dh)) if dh.group() == g => {
                let Some((grp, data)) = ke_of(p) else {
                    return Err(Error::InvalidResponse("PFS answer without KE"));
                };
                if grp != g.ikev2_id() {
                    return Err(Error::InvalidResponse(
                        "KE group differs from the chosen group",
                    ));
                }
                Some(dh.shared(data).map_err(|_| Error::KeyExchange)?)
            }
            _ => {
                return Err(Error::InvalidResponse(
                    "responder chose a PFS group we sent no KE for",
                ))
            }
        };
        let sa = self
            .sa
            .as_ref()
            .ok_or(Error::InvalidResponse("no IKE SA"))?;
        let km = crypto::child_keymat(
            sa.prf,
            &sa.keys.sk_d,
            shared.as_deref().map(|v| &v[..]),
            ni,
            nr,
            &sel.suite,
        );
        let half = sel.suite.child_keymat_len();
        Ok(ChildSa {
            spi_in: offer.spi_in,
            spi_out,
            suite: sel.suite,
            keys_out: Zeroizing::new(km[..half].to_vec()),
            keys_in: Zeroizing::new(km[half..].to_vec()),
            local_ts: tsi.to_vec(),
            remote_ts: tsr.to_vec(),
            encap: self.nat_t,
            local: self.local,
            remote: self.remote,
            rekey_of,
        })
    }

    fn on_create_child_response(
        &mut self,
        now: Instant,
        p: &[Payload],
        offer: ChildOffer,
        rekey_of: Option<u32>,
    ) {
        let reset_old = |s: &mut Ike| {
            if let Some(old) = rekey_of {
                if let Some(c) = s.children.iter_mut().find(|c| c.sa.spi_in == old) {
                    if c.state == ChildState::Rekeying {
                        c.state = ChildState::Installed;
                        c.collision = None;
                    }
                }
            }
        };
        if let Some(nt) = wire::find_notify(p, notify::INVALID_KE_PAYLOAD) {
            let g = (nt.data.len() == 2)
                .then(|| u16::from_be_bytes([nt.data[0], nt.data[1]]))
                .and_then(DhGroup::from_id);
            let offered = g.is_some_and(|g| offer.proposals.iter().any(|s| s.dh.contains(&g)));
            let first_try = offer.dh.as_ref().map(|d| d.group()) != g;
            if offered && first_try {
                reset_old(self);
                self.start_create_child(now, rekey_of, g, offer.local_ts, offer.remote_ts);
                return;
            }
        }
        if let Some(nt) = wire::error_notify(p) {
            if matches!(
                nt.ty,
                notify::TEMPORARY_FAILURE | notify::CHILD_SA_NOT_FOUND
            ) && rekey_of.is_some()
            {
                // A collision the peer resolved for us, or the SA is going away anyway.
                reset_old(self);
                if let Some(old) = rekey_of {
                    if let Some(c) = self.children.iter_mut().find(|c| c.sa.spi_in == old) {
                        c.rekey_at = Some(now + Duration::from_secs(5));
                    }
                }
                return;
            }
        }
        let Some(nr) = nonce_of(p) else {
            reset_old(self);
            let e = match wire::error_notify(p) {
                Some(nt) => Error::PeerRefused {
                    exchange: exchange::CREATE_CHILD_SA,
                    notify: nt.ty,
                },
                None => Error::InvalidResponse("CREATE_CHILD_SA answer without nonce"),
            };
            self.fail(e);
            return;
        };
        let ni = offer.nonce.clone();
        match self.finish_child(p, offer, &ni, &nr, rekey_of, false) {
            Ok(child) => {
                let new_spi = child.spi_in;
                self.install_child(now, child);
                let Some(old) = rekey_of else {
                    return;
                };
                let Some(c) = self.children.iter_mut().find(|c| c.sa.spi_in == old) else {
                    return;
                };
                c.state = ChildState::Rekeyed;
                match c.collision.take() {
                    Some((_, pni, pnr)) => {
                        // RFC 7296 §2.8.1: the SA created with the lowest of the four nonces
                        // is deleted by its creator; the winner deletes the old SA.
                        let ours_lowest = ni.min(nr.clone()) < pni.min(pnr);
                        if ours_lowest {
                            self.tasks.push_back(Task::DeleteChild(new_spi));
                        } else {
                            self.tasks.push_back(Task::DeleteChild(old));
                        }
                    }
                    None => self.tasks.push_back(Task::DeleteChild(old)),
                }
            }
            Err(e) => {
                reset_old(self);
                self.fail(e);
            }
        }
    }

    fn on_ike_rekey_response(
        &mut self,
        now: Instant,
        p: &[Payload],
        spi_i: u64,
        dh: DhPrivate,
        ni: Vec<u8>,
    ) {
        if let Some(nt) = wire::error_notify(p) {
            if nt.ty == notify::INVALID_KE_PAYLOAD {
                let g = (nt.data.len() == 2)
                    .then(|| u16::from_be_bytes([nt.data[0], nt.data[1]]))
                    .and_then(DhGroup::from_id);
                if let Some(g) = g.filter(|g| {
                    *g != dh.group() && self.cfg.ike_proposals.iter().any(|s| s.dh.contains(g))
                }) {
                    self.start_ike_rekey(now, g);
                    return;
                }
            }
            // Refused, but the peer's colliding rekey went through: that SA is the new one
            // (the peer completed before it saw our request and deletes the old SA).
            if self.adopt_collision(now) {
                return;
            }
            if nt.ty == notify::TEMPORARY_FAILURE {
                self.ike_rekey_at = Some(now + Duration::from_secs(5));
                return;
            }
            self.fail(Error::PeerRefused {
                exchange: exchange::CREATE_CHILD_SA,
                notify: nt.ty,
            });
            return;
        }
        let Some(old) = self.sa.as_ref() else {
            return;
        };
        let (new, nr) = match rekeyed_sa(&self.cfg.ike_proposals, old, p, spi_i, &dh, &ni) {
            Ok(x) => x,
            Err(e) => {
                self.fail(e);
                self.adopt_collision(now);
                return;
            }
        };
        let delete = vec![Payload::Delete(Delete {
            protocol: protocol::IKE,
            spi_size: 0,
            spis: vec![],
        })];
        if let Some(c) = self.collision.take() {
            // RFC 7296 §2.8.2: both exchanges completed. The new IKE SA of the exchange
            // holding the lowest of the four nonces is redundant and deleted by the peer
            // that initiated it; the initiator of the surviving one deletes the old SA.
            let ours_lowest = lower_nonce(&ni, &nr) < lower_nonce(&c.ni, &c.nr);
            match c.sa {
                Some(theirs) if ours_lowest => {
                    let spis = (new.spi_i, new.spi_r);
                    let until = now + self.redundant_wait();
                    self.redundant = Some((new, until));
                    self.old_sa = self.sa.replace(theirs);
                    self.ike_up(now, true);
                    self.request_on(
                        now,
                        exchange::INFORMATIONAL,
                        delete,
                        PendingKind::DeleteIke,
                        spis,
                    );
                    return;
                }
                Some(theirs) => {
                    // Ours survives; the peer deletes its redundant SA. Should that delete
                    // never come, it is forgotten after a while.
                    let until = now + self.redundant_wait();
                    self.redundant = Some((theirs, until));
                }
                // The peer already deleted its own as redundant: ours survives.
                None => {}
            }
        }
        let old_spis = self.cur();
        self.old_sa = self.sa.replace(new);
        self.ike_up(now, true);
        // Delete the old IKE SA on the old SA itself.
        self.request_on(
            now,
            exchange::INFORMATIONAL,
            delete,
            PendingKind::DeleteIke,
            old_spis,
        );
    }

    /// The answer to our IKE rekey arrived after the peer had deleted the old IKE SA and we
    /// had adopted its colliding SA: the SA our exchange created is redundant, and we are
    /// the one to delete it (RFC 7296 §2.8.2).
    fn on_late_ike_rekey_response(&mut self, now: Instant, p: &[Payload], late: LateRekey) {
        let hit = |s: &IkeSa| (s.spi_i, s.spi_r) == late.spis;
        let Some(base) = self.old_sa.as_ref().filter(|s| hit(s)) else {
            return;
        };
        let made = rekeyed_sa(
            &self.cfg.ike_proposals,
            base,
            p,
            late.spi_i,
            &late.dh,
            &late.ni,
        );
        self.old_sa = None;
        if let Ok((new, _)) = made {
            let until = now + self.redundant_wait();
            self.redundant = Some((new, until));
            self.tasks.push_back(Task::DeleteRedundant);
        }
    }

    /// How long the redundant IKE SA of a collision is kept for its delete: the peer's
    /// whole retransmission schedule (assumed like ours), at least the half-open timeout.
    fn redundant_wait(&self) -> Duration {
        let mut d = Duration::ZERO;
        for i in 0..=self.cfg.retransmit_tries.min(16) {
            d += self.cfg.retransmit_timeout * 2u32.saturating_pow(i.min(6));
        }
        d.max(self.cfg.half_open_timeout)
    }
}

/// The initiator's side of an IKE SA rekey: checks the answer `p` to our request (SPI
/// `spi_i`, `dh`, nonce `ni`) made on `base`, and derives the new IKE SA (RFC 7296 §2.18).
fn rekeyed_sa(
    offered: &[ProposalSpec],
    base: &IkeSa,
    p: &[Payload],
    spi_i: u64,
    dh: &DhPrivate,
    ni: &[u8],
) -> Result<(IkeSa, Vec<u8>), Error> {
    let (Some(props), Some((grp, ke)), Some(nr)) = (sa_of(p), ke_of(p), nonce_of(p)) else {
        return Err(Error::InvalidResponse(
            "IKE rekey answer without SA, KE or nonce",
        ));
    };
    let Some(sel) = proposal::check_response(offered, props, false) else {
        return Err(Error::InvalidResponse(
            "responder chose an IKE proposal we did not offer",
        ));
    };
    let (Some(spi_r), true) = (
        spi64(&sel.spi),
        sel.suite.dh == Some(dh.group()) && grp == dh.group().ikev2_id(),
    ) else {
        return Err(Error::InvalidResponse("IKE rekey answer inconsistent"));
    };
    let shared = dh.shared(ke).map_err(|_| Error::KeyExchange)?;
    let seed = crypto::skeyseed_rekey(base.prf, &base.keys.sk_d, &shared, ni, &nr);
    let keys = crypto::derive_ike_keys(&sel.suite, &seed, ni, &nr, spi_i, spi_r);
    let new = IkeSa::new(sel.suite, keys, spi_i, spi_r, true, base.peer_frag)
        .ok_or(Error::InvalidResponse("IKE rekey answer inconsistent"))?;
    Ok((new, nr))
}

impl fmt::Debug for Ike {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ike")
            .field("role", &self.cfg.role)
            .field("state", &self.state())
            .field("local", &self.local)
            .field("remote", &self.remote)
            .field("children", &self.children.len())
            .finish_non_exhaustive()
    }
}
