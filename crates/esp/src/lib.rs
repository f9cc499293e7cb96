//! ESP security associations for vnet's VPN gateway: RFC 4303 in tunnel mode, UDP
//! encapsulation (RFC 3948), anti-replay with extended sequence numbers, lifetimes.
//!
//! A pure engine: no IO, no clock, no randomness inside. Time comes in as `now: Instant`,
//! random IV bytes for AES-CBC through an [`IvSource`], so every exchange replays byte for
//! byte in tests. Packets are sealed and opened in caller-owned buffers; nothing allocates
//! per packet.
//!
//! ```
//! use std::time::Instant;
//! use esp::{EspSuite, InboundSa, Opened, OutboundSa, SaConfig, SaKeys, NEXT_HEADER_IPV4};
//!
//! let suite = EspSuite::AES_GCM_256;
//! let keymat = [7u8; 36]; // from IKE: KEYMAT for this direction (RFC 7296 §2.17)
//! let now = Instant::now();
//! let mut tx = OutboundSa::new(
//!     SaConfig::new(0x1000, SaKeys::from_keymat(suite, &keymat).unwrap()), now, None).unwrap();
//! let mut rx = InboundSa::new(
//!     SaConfig::new(0x1000, SaKeys::from_keymat(suite, &keymat).unwrap()), now).unwrap();
//!
//! let inner = [0x45u8; 60]; // an IPv4 packet
//! let mut buf = [0u8; 2048];
//! let n = tx.seal(now, &inner, NEXT_HEADER_IPV4, &mut buf).unwrap();
//! match rx.open(now, &mut buf[..n]).unwrap() {
//!     Opened::Packet { payload, .. } => assert_eq!(&buf[payload], &inner[..]),
//!     Opened::Dummy { .. } => unreachable!(),
//! }
//! ```

#![forbid(unsafe_code)]

mod crypto;
pub mod keys;
pub mod lifetime;
pub mod replay;
pub mod sa;
pub mod suite;
pub mod udp;

#[doc(hidden)]
pub mod fuzzing;

#[cfg(test)]
mod tests;

pub use keys::{KeyError, SaKeys};
pub use lifetime::{Lifetime, LimitKind, Limits, SaEvent, SaStats};
pub use replay::{ReplayError, ReplayWindow};
pub use sa::{
    BufferedIvSource, ConfigError, InboundSa, IvSource, Mode, OpenError, Opened, OutboundSa,
    SaConfig, SealError, NEXT_HEADER_DUMMY, NEXT_HEADER_IPV4, NEXT_HEADER_IPV6,
};
pub use suite::{EncrAlg, EspSuite, IntegAlg, SuiteError};

/// Octets of SPI and sequence number at the start of every ESP packet.
pub const ESP_HEADER_LEN: usize = 8;
