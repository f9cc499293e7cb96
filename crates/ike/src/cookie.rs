//! A stateless responder front end for IKE_SA_INIT under load (RFC 7296 §2.6).
//!
//! The gate sees an IKE_SA_INIT request before any per-peer state exists (the caller asks
//! it only for requests that belong to no session yet). While the number of half-open IKE
//! SAs is below a threshold it lets every request through; at or above it, a request
//! proceeds only with a valid COOKIE, and any other gets a bare COOKIE answer computed from
//! the request and a secret, so that nothing is kept for it:
//!
//! ```text
//! Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)
//! ```
//!
//! The secret is regenerated every `rotate_every` with a new version; cookies of the
//! previous version are still accepted for `grace` after the change, so that an initiator
//! answering just across a rotation is not sent round again. A cookie that does not verify
//! (forged, for another request, or of a retired secret) is ignored as the RFC says, "as
//! if no cookie had been included": under load that means a fresh cookie and no state.
//!
//! Pure like the engine: time is an argument, randomness comes through [`Rng`], and the
//! half-open count is either passed in ([`CookieGate::set_half_open`]) or tracked from the
//! sessions the gate admitted ([`CookieGate::half_open_done`]).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use aws_lc_rs::digest;
use zeroize::Zeroizing;

use crate::crypto;
use crate::wire::{self, exchange, flags, notify, Header, Notify, Payload};
use crate::{Rng, Transmit};

/// Octets of the hash in a cookie (SHA-256), after the one-octet secret version.
const HASH_LEN: usize = 32;

/// When and how the gate demands cookies.
#[derive(Clone, Copy, Debug)]
pub struct CookieConfig {
    /// Demand a cookie once this many IKE SAs are half-open (0: always).
    pub threshold: usize,
    /// Regenerate the secret this often.
    pub rotate_every: Duration,
    /// Accept cookies of the previous secret for this long after a rotation.
    pub grace: Duration,
}

impl Default for CookieConfig {
    fn default() -> CookieConfig {
        CookieConfig {
            threshold: 64,
            rotate_every: Duration::from_secs(120),
            grace: Duration::from_secs(10),
        }
    }
}

/// What to do with a datagram shown to the gate.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Create a session (or hand it to the one waiting) and give it the datagram.
    Accept,
    /// Send this stateless answer (a COOKIE notify) and keep nothing.
    Reply(Transmit),
    /// Not an IKE_SA_INIT request the gate can judge: drop it.
    Drop,
}

struct SecretGen {
    version: u8,
    secret: Zeroizing<[u8; 32]>,
}

/// The stateless COOKIE front end (see the module documentation).
pub struct CookieGate {
    cfg: CookieConfig,
    rng: Box<dyn Rng + Send>,
    current: SecretGen,
    /// The previous secret and when it was retired.
    previous: Option<(SecretGen, Instant)>,
    rotated_at: Instant,
    half_open: usize,
}

impl CookieGate {
    pub fn new(cfg: CookieConfig, mut rng: Box<dyn Rng + Send>, now: Instant) -> CookieGate {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill(&mut secret[..]);
        CookieGate {
            cfg,
            rng,
            current: SecretGen { version: 0, secret },
            previous: None,
            rotated_at: now,
            half_open: 0,
        }
    }

    /// Sets the number of half-open IKE SAs as counted elsewhere.
    pub fn set_half_open(&mut self, n: usize) {
        self.half_open = n;
    }

    /// A session the gate admitted finished IKE_SA_INIT..IKE_AUTH (established, failed or
    /// expired): it is no longer half-open.
    pub fn half_open_done(&mut self) {
        self.half_open = self.half_open.saturating_sub(1);
    }

    pub fn half_open(&self) -> usize {
        self.half_open
    }

    /// Whether requests need a cookie now.
    pub fn under_load(&self) -> bool {
        self.half_open >= self.cfg.threshold
    }

    /// When [`CookieGate::handle_timeout`] should run next (the next rotation).
    pub fn poll_timeout(&self) -> Instant {
        self.rotated_at + self.cfg.rotate_every
    }

    /// Rotates the secret when due and forgets the previous one after its grace period.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due = self.rotated_at + self.cfg.rotate_every;
        if now >= due {
            // Retired when it was due, whenever we got to it; after a whole missed period
            // the retired secret is as stale as the one before.
            self.rotate(due);
            if now >= due + self.cfg.rotate_every {
                self.rotate(now);
            }
        }
        if self
            .previous
            .as_ref()
            .is_some_and(|(_, at)| now >= *at + self.cfg.grace)
        {
            self.previous = None;
        }
    }

    /// Regenerates the secret now (for instance when an attack is noticed).
    pub fn rotate(&mut self, now: Instant) {
        let mut secret = Zeroizing::new([0u8; 32]);
        self.rng.fill(&mut secret[..]);
        let next = SecretGen {
            version: self.current.version.wrapping_add(1),
            secret,
        };
        let old = std::mem::replace(&mut self.current, next);
        self.previous = Some((old, now));
        self.rotated_at = now;
    }

    /// The cookie for a request: version, then SHA-256(Ni | IPi | SPIi | secret).
    fn cookie(g: &SecretGen, ni: &[u8], ip: IpAddr, spi_i: u64) -> Vec<u8> {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(ni);
        match ip {
            IpAddr::V4(a) => ctx.update(&a.octets()),
            IpAddr::V6(a) => ctx.update(&a.octets()),
        }
        ctx.update(&spi_i.to_be_bytes());
        ctx.update(&g.secret[..]);
        let mut c = Vec::with_capacity(1 + HASH_LEN);
        c.push(g.version);
        c.extend_from_slice(ctx.finish().as_ref());
        c
    }

    /// Whether `cookie` is valid for this request under the current secret, or under the
    /// previous one within its grace period. Compared in constant time.
    fn valid(&self, now: Instant, cookie: &[u8], ni: &[u8], ip: IpAddr, spi_i: u64) -> bool {
        let Some(&version) = cookie.first() else {
            return false;
        };
        let gen = if version == self.current.version {
            &self.current
        } else {
            match &self.previous {
                Some((g, at)) if g.version == version && now < *at + self.cfg.grace => g,
                _ => return false,
            }
        };
        crypto::ct_eq(cookie, &CookieGate::cookie(gen, ni, ip, spi_i))
    }

    /// Judges a UDP payload from `src` to our `dst` that belongs to no session yet.
    pub fn handle(
        &mut self,
        now: Instant,
        src: SocketAddr,
        dst: SocketAddr,
        data: &[u8],
    ) -> Verdict {
        self.handle_timeout(now);
        let (msg, marker) = match data {
            [0, 0, 0, 0, rest @ ..] => (rest, true),
            _ => (data, false),
        };
        let Ok(raw) = wire::parse_message(msg) else {
            return Verdict::Drop;
        };
        let h = raw.header;
        if h.exchange != exchange::IKE_SA_INIT
            || h.is_response()
            || !h.is_initiator()
            || h.message_id != 0
            || h.spi_r != 0
        {
            return Verdict::Drop;
        }
        if !self.under_load() {
            // Any cookie is simply not needed (RFC 7296 §2.6).
            self.half_open += 1;
            return Verdict::Accept;
        }
        let ni = raw.payloads.iter().find_map(|p| match p {
            Payload::Nonce(n) => Some(n.as_slice()),
            _ => None,
        });
        let Some(ni) = ni else {
            // Nothing to bind a cookie to; not worth an answer under load.
            return Verdict::Drop;
        };
        // The COOKIE notify must be the first payload (RFC 7296 §2.6).
        let offered = match raw.payloads.first() {
            Some(Payload::Notify(nt)) if nt.ty == notify::COOKIE => Some(&nt.data[..]),
            _ => None,
        };
        if offered.is_some_and(|c| self.valid(now, c, ni, src.ip(), h.spi_i)) {
            self.half_open += 1;
            return Verdict::Accept;
        }
        // No cookie, or one that does not verify: answer as if none had been included.
        let cookie = CookieGate::cookie(&self.current, ni, src.ip(), h.spi_i);
        let reply = wire::emit_plain(
            Header {
                spi_i: h.spi_i,
                spi_r: 0,
                next_payload: 0,
                version: 0x20,
                exchange: exchange::IKE_SA_INIT,
                flags: flags::RESPONSE,
                message_id: 0,
                length: 0,
            },
            &[Payload::Notify(Notify::new(notify::COOKIE, cookie))],
        );
        let mut payload = Vec::with_capacity(reply.len() + 4);
        if marker {
            payload.extend_from_slice(&[0, 0, 0, 0]);
        }
        payload.extend_from_slice(&reply);
        Verdict::Reply(Transmit {
            src: dst,
            dst: src,
            payload,
        })
    }
}

impl core::fmt::Debug for CookieGate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CookieGate")
            .field("cfg", &self.cfg)
            .field("version", &self.current.version)
            .field("half_open", &self.half_open)
            .finish_non_exhaustive()
    }
}
