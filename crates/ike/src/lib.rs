//! IKEv2 (RFC 7296) for vnet's VPN gateway, as a pure engine in the style of quinn-proto:
//! datagrams and timeouts go in ([`Ike::handle_datagram`], [`Ike::handle_timeout`]),
//! datagrams and events come out ([`Ike::poll_transmit`], [`Ike::poll_event`],
//! [`Ike::poll_timeout`]). There is no IO, clock or randomness inside: `now` is an argument
//! and random octets come through the [`Rng`] trait, so every conversation replays byte for
//! byte in tests — except ECDSA signature nonces, which aws-lc draws itself ([`cert`]).
//!
//! Covered: IKE_SA_INIT (COOKIE, with a stateless front end for load in [`cookie`],
//! INVALID_KE_PAYLOAD retry, NAT detection and the move to port 4500), IKE_AUTH with
//! pre-shared keys or certificates (ECDSA P-256 signatures per RFC 7427 or RFC 4754, CERT and
//! CERTREQ, chains checked against configured CAs, DN identities; [`cert`]), inner
//! addresses for remote-access clients (CP, [`cp`]) and the first Child SA, CREATE_CHILD_SA
//! (Child
//! SA rekey with and without PFS, IKE SA rekey), INFORMATIONAL (delete, liveness checks),
//! retransmission with exponential backoff, IKE fragmentation (RFC 7383).

#![deny(unsafe_code)]

pub mod cert;
pub mod cookie;
pub mod cp;
pub mod crypto;
pub mod fuzzing;
mod modp;
pub mod proposal;
mod session;
pub mod ts;
pub mod wire;

pub use cookie::{CookieConfig, CookieGate, Verdict};
pub use crypto::Secret;
pub use proposal::{DhGroup, Encr, Integ, Kind, Prf, ProposalError, ProposalSpec, Suite};
pub use session::{ChildSa, Config, Error, Event, Identity, Ike, Role, State, Transmit};
pub use wire::TrafficSelector;

/// A source of random octets (SPIs, nonces, DH private values, CBC IVs, cookie secret).
pub trait Rng {
    fn fill(&mut self, out: &mut [u8]);
}

/// The operating system's CSPRNG, through aws-lc.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemRng;

impl Rng for SystemRng {
    fn fill(&mut self, out: &mut [u8]) {
        // The only failure mode of the system RNG is an unusable OS; nothing can go on then.
        aws_lc_rs::rand::fill(out).expect("system random number generator");
    }
}

/// A deterministic generator for tests and simulations (SplitMix64). Not for real keys.
#[derive(Debug, Clone)]
pub struct SeededRng(u64);

impl SeededRng {
    pub fn new(seed: u64) -> SeededRng {
        SeededRng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Rng for SeededRng {
    fn fill(&mut self, out: &mut [u8]) {
        for c in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            c.copy_from_slice(&v[..c.len()]);
        }
    }
}
