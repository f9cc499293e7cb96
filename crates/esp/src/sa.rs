//! Security associations: sealing (outbound) and opening (inbound) ESP packets.
//!
//! Packet layout (RFC 4303 §2):
//!
//! ```text
//! SPI (4) | Sequence Number, low 32 bits (4) | IV (0, 8 or 16)
//! | Payload | Padding 1,2,3,… | Pad Length (1) | Next Header (1) | ICV
//! ```
//!
//! The encrypted part (payload to next header) is a multiple of the cipher block size, at
//! least 4. The ICV covers SPI to next header, plus the high 32 bits of the sequence number
//! when extended sequence numbers are in use (RFC 4303 §2.2.1: not sent, appended for the ICV
//! computation only; for AEAD suites they are part of the AAD, RFC 4106 §5 / RFC 7634 §3).

use core::fmt;
use std::ops::Range;
use std::time::Instant;

use aws_lc_rs::aead::Aad;

use crate::crypto::{self, Integrity, OpenCipher, SealCipher, MAX_ICV};
use crate::keys::SaKeys;
use crate::lifetime::{LifeState, Lifetime, LimitKind, SaEvent, SaStats};
use crate::replay::{ReplayError, ReplayWindow, DEFAULT_WINDOW};
use crate::suite::EspSuite;
use crate::ESP_HEADER_LEN;

/// Next header value of an IPv4 packet (tunnel mode).
pub const NEXT_HEADER_IPV4: u8 = 4;
/// Next header value of an IPv6 packet (tunnel mode).
pub const NEXT_HEADER_IPV6: u8 = 41;
/// Next header value of a dummy packet (RFC 4303 §2.6), dropped by the receiver.
pub const NEXT_HEADER_DUMMY: u8 = 59;

/// Supplies the IVs of AES-CBC SAs, which must be unpredictable (RFC 3602 §2.3; RFC 4303
/// §3.3.2): fill the slice with fresh random bytes from a cryptographically secure generator.
///
/// The engine has no randomness of its own; AEAD suites do not use this (their IV is a
/// counter). Any `FnMut(&mut [u8]) + Send` closure is an `IvSource`.
pub trait IvSource {
    /// Fill `iv` (16 octets for AES-CBC) with unpredictable bytes.
    fn fill_iv(&mut self, iv: &mut [u8]);
}

impl<F: FnMut(&mut [u8])> IvSource for F {
    fn fill_iv(&mut self, iv: &mut [u8]) {
        self(iv)
    }
}

/// An [`IvSource`] that draws random bytes from the caller's generator in blocks of 4 KiB and
/// hands them out 16 at a time: one generator call per 256 AES-CBC packets instead of one per
/// packet (a CSPRNG call costs about as much as encrypting a small packet). Still no
/// randomness of its own: `fill` must be a cryptographically secure generator.
pub struct BufferedIvSource<F> {
    fill: F,
    buf: Box<[u8; 4096]>,
    pos: usize,
}

impl<F: FnMut(&mut [u8])> BufferedIvSource<F> {
    /// Wraps `fill`, which fills a slice with random bytes.
    pub fn new(fill: F) -> Self {
        BufferedIvSource {
            fill,
            buf: Box::new([0u8; 4096]),
            pos: 4096,
        }
    }
}

impl<F: FnMut(&mut [u8])> IvSource for BufferedIvSource<F> {
    fn fill_iv(&mut self, iv: &mut [u8]) {
        if iv.len() > self.buf.len() {
            return (self.fill)(iv);
        }
        if self.pos + iv.len() > self.buf.len() {
            (self.fill)(&mut self.buf[..]);
            self.pos = 0;
        }
        iv.copy_from_slice(&self.buf[self.pos..self.pos + iv.len()]);
        // Each byte is handed out once.
        self.buf[self.pos..self.pos + iv.len()].fill(0);
        self.pos += iv.len();
    }
}

/// IPsec mode of the SA. The ESP transform is the same in both modes; the mode decides which
/// next header values are accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// The payload is a whole IP packet: next header 4 (IPv4) or 41 (IPv6), whose first nibble
    /// must match, or 59 (dummy).
    #[default]
    Tunnel,
    /// The payload is an upper-layer protocol: any next header value; 59 is still a dummy.
    Transport,
}

impl Mode {
    fn check_payload(self, next_header: u8, payload: &[u8]) -> bool {
        match (self, next_header) {
            (_, NEXT_HEADER_DUMMY) => true,
            (Mode::Transport, _) => true,
            (Mode::Tunnel, NEXT_HEADER_IPV4) => payload.first().is_some_and(|b| b >> 4 == 4),
            (Mode::Tunnel, NEXT_HEADER_IPV6) => payload.first().is_some_and(|b| b >> 4 == 6),
            (Mode::Tunnel, _) => false,
        }
    }
}

/// Everything needed to install one SA (one direction).
#[derive(Clone, Debug)]
pub struct SaConfig {
    /// SPI of the SA (the receiver's choice). 0 to 255 are reserved (RFC 4303 §2.1) and
    /// refused.
    pub spi: u32,
    /// Suite and keys.
    pub keys: SaKeys,
    /// Extended (64-bit) sequence numbers, as negotiated (RFC 7296 §3.3.2 ESN transform).
    pub esn: bool,
    /// Tunnel (default) or transport mode.
    pub mode: Mode,
    /// Soft and hard lifetime; none by default.
    pub lifetime: Lifetime,
    /// Inbound: anti-replay window in packets, a power of two from 64 to 65536 (default 1024).
    pub replay_window: u32,
    /// Policy: NULL encryption is refused unless this is set.
    pub allow_null_encryption: bool,
    /// Outbound AEAD suites: the explicit IV of the packet with sequence number `s` is
    /// `s XOR aead_iv_mask` (64-bit, big-endian). With the default 0 the IV is the sequence
    /// number itself (RFC 4106 §3.1 allows a counter). Any fixed mask keeps IVs unique under
    /// the key, since sequence numbers never repeat; a random mask keeps the IV from
    /// mirroring the packet count.
    pub aead_iv_mask: u64,
}

impl SaConfig {
    /// Tunnel mode, 32-bit sequence numbers, no lifetime, a 1024-packet replay window.
    pub fn new(spi: u32, keys: SaKeys) -> Self {
        SaConfig {
            spi,
            keys,
            esn: false,
            mode: Mode::Tunnel,
            lifetime: Lifetime::default(),
            replay_window: DEFAULT_WINDOW,
            allow_null_encryption: false,
            aead_iv_mask: 0,
        }
    }
}

/// Why an SA could not be installed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigError {
    /// SPI 0 to 255 (reserved).
    ReservedSpi(u32),
    /// NULL encryption without [`SaConfig::allow_null_encryption`].
    NullEncryptionNotAllowed,
    /// An outbound AES-CBC SA needs an [`IvSource`].
    IvSourceRequired,
    /// Replay window size not a power of two in 64..=65536.
    BadReplayWindow(u32),
    /// The crypto library refused the key.
    BadKey,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::ReservedSpi(s) => write!(f, "SPI {s} is reserved"),
            ConfigError::NullEncryptionNotAllowed => {
                f.write_str("NULL encryption is not allowed by policy")
            }
            ConfigError::IvSourceRequired => f.write_str("AES-CBC needs an IV source"),
            ConfigError::BadReplayWindow(w) => write!(f, "bad replay window size {w}"),
            ConfigError::BadKey => f.write_str("the crypto library refused the key"),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Why a packet was not sealed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealError {
    /// A hard limit was reached (including an exhausted sequence number space): the SA
    /// refuses to seal; install its replacement.
    Expired(LimitKind),
    /// `out` is shorter than the sealed packet.
    BufferTooSmall { needed: usize },
    /// The next header value is not allowed in this mode, or does not match the payload
    /// (tunnel mode: 4 with an IPv4 packet, 41 with IPv6, or 59).
    NextHeaderNotAllowed(u8),
    /// The crypto library refused the operation (does not happen with valid lengths).
    Crypto,
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SealError::Expired(k) => write!(f, "SA expired ({k} limit)"),
            SealError::BufferTooSmall { needed } => {
                write!(f, "output buffer too small, {needed} octets needed")
            }
            SealError::NextHeaderNotAllowed(n) => write!(f, "next header {n} not allowed"),
            SealError::Crypto => f.write_str("encryption failed"),
        }
    }
}

impl std::error::Error for SealError {}

/// Why a packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    /// A hard limit was reached: the SA refuses to open.
    Expired(LimitKind),
    /// Shorter than the smallest packet of this suite.
    Truncated,
    /// The SPI is not this SA's.
    WrongSpi(u32),
    /// The encrypted part is not a multiple of the block size (4 for AEAD and NULL).
    BadLength,
    /// Refused by the anti-replay window (before the ICV check: not authenticated).
    Replay(ReplayError),
    /// ICV mismatch: forged, corrupted, or keyed differently.
    AuthFailed,
    /// Authenticated, but the pad length exceeds the packet or the padding is not 1, 2, 3, …
    BadPadding,
    /// Authenticated, but the next header is not allowed in this mode or does not match the
    /// payload.
    NextHeaderNotAllowed(u8),
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpenError::Expired(k) => write!(f, "SA expired ({k} limit)"),
            OpenError::Truncated => f.write_str("packet too short"),
            OpenError::WrongSpi(s) => write!(f, "SPI {s:#010x} is not this SA's"),
            OpenError::BadLength => f.write_str("encrypted part not a multiple of the block size"),
            OpenError::Replay(e) => write!(f, "replay check: {e}"),
            OpenError::AuthFailed => f.write_str("integrity check failed"),
            OpenError::BadPadding => f.write_str("bad padding"),
            OpenError::NextHeaderNotAllowed(n) => write!(f, "next header {n} not allowed"),
        }
    }
}

impl std::error::Error for OpenError {}

/// An accepted packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Deliver `datagram[payload]`, a packet of protocol `next_header`.
    Packet {
        next_header: u8,
        payload: Range<usize>,
        /// Full (ESN-inferred) sequence number.
        seq: u64,
    },
    /// A dummy packet (next header 59, RFC 4303 §2.6): authenticated and counted, then
    /// dropped silently.
    Dummy { seq: u64 },
}

fn check_spi(spi: u32) -> Result<(), ConfigError> {
    if spi < 256 {
        Err(ConfigError::ReservedSpi(spi))
    } else {
        Ok(())
    }
}

fn check_null(config: &SaConfig) -> Result<(), ConfigError> {
    if config.keys.suite().is_null_encryption() && !config.allow_null_encryption {
        Err(ConfigError::NullEncryptionNotAllowed)
    } else {
        Ok(())
    }
}

/// AAD of AEAD suites: SPI and sequence number, 8 octets, or 12 with ESN (RFC 4106 §5).
fn aead_aad(spi: u32, seq: u64, esn: bool) -> ([u8; 12], usize) {
    let mut a = [0u8; 12];
    a[..4].copy_from_slice(&spi.to_be_bytes());
    if esn {
        a[4..].copy_from_slice(&seq.to_be_bytes());
        (a, 12)
    } else {
        a[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        (a, 8)
    }
}

fn seq_high(seq: u64) -> [u8; 4] {
    ((seq >> 32) as u32).to_be_bytes()
}

/// An outbound SA: seals inner packets into ESP packets.
pub struct OutboundSa {
    spi: u32,
    suite: EspSuite,
    esn: bool,
    mode: Mode,
    cipher: SealCipher,
    integ: Option<Integrity>,
    iv_source: Option<Box<dyn IvSource + Send>>,
    iv_mask: u64,
    /// Sequence number of the last packet sealed (0: none yet).
    last_seq: u64,
    max_seq: u64,
    soft_seq: u64,
    life: LifeState,
}

impl fmt::Debug for OutboundSa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundSa")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("suite", &self.suite)
            .field("esn", &self.esn)
            .field("mode", &self.mode)
            .field("last_seq", &self.last_seq)
            .field("life", &self.life)
            .finish_non_exhaustive()
    }
}

impl OutboundSa {
    /// Installs an outbound SA at time `now`. AES-CBC suites need an `iv_source`; the others
    /// ignore it.
    pub fn new(
        config: SaConfig,
        now: Instant,
        iv_source: Option<Box<dyn IvSource + Send>>,
    ) -> Result<Self, ConfigError> {
        check_spi(config.spi)?;
        check_null(&config)?;
        let suite = config.keys.suite();
        let needs_iv = suite.iv_len() > 0 && !suite.encr().is_aead();
        if needs_iv && iv_source.is_none() {
            return Err(ConfigError::IvSourceRequired);
        }
        let cipher = SealCipher::new(suite.encr(), config.keys.cipher_key(), config.keys.salt())
            .map_err(|_| ConfigError::BadKey)?;
        let integ = suite
            .integ()
            .map(|a| Integrity::new(a, config.keys.integ_key()));
        let max_seq = if config.esn {
            u64::MAX
        } else {
            u64::from(u32::MAX)
        };
        Ok(OutboundSa {
            spi: config.spi,
            suite,
            esn: config.esn,
            mode: config.mode,
            cipher,
            integ,
            iv_source: if needs_iv { iv_source } else { None },
            iv_mask: config.aead_iv_mask,
            last_seq: 0,
            max_seq,
            // Ask for a rekey with 1/16 of the sequence space left.
            soft_seq: max_seq - max_seq / 16,
            life: LifeState::new(config.lifetime, now),
        })
    }

    /// The SA's SPI.
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// The SA's suite.
    pub fn suite(&self) -> EspSuite {
        self.suite
    }

    /// Offset of the payload in a sealed packet (SPI, sequence number, IV): where
    /// [`Self::seal_in_place`] expects the inner packet.
    pub fn header_len(&self) -> usize {
        self.suite.header_len()
    }

    /// Length of the ESP packet that seals `inner_len` octets.
    pub fn sealed_len(&self, inner_len: usize) -> usize {
        self.suite.sealed_len(inner_len)
    }

    /// Sequence number of the last packet sealed (0 if none).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Packets and payload octets sealed.
    pub fn stats(&self) -> SaStats {
        self.life.stats
    }

    /// The next lifetime event to act on, if any (each is reported once).
    pub fn poll_event(&mut self) -> Option<SaEvent> {
        self.life.poll_event()
    }

    /// When [`Self::handle_timeout`] should next be called (a time limit), if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.life.poll_timeout()
    }

    /// Applies the time limits at `now` (also done by every seal).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.life.handle_timeout(now)
    }

    /// Whether a hard limit has ended the SA.
    pub fn is_expired(&self) -> bool {
        self.life.expired().is_some()
    }

    /// Seals `inner` (an IP packet in tunnel mode) into `out`, returning the length of the
    /// ESP packet written at the start of `out`. `out` must hold [`Self::sealed_len`] octets.
    pub fn seal(
        &mut self,
        now: Instant,
        inner: &[u8],
        next_header: u8,
        out: &mut [u8],
    ) -> Result<usize, SealError> {
        let hdr = self.header_len();
        let needed = self.sealed_len(inner.len());
        if out.len() < needed {
            return Err(SealError::BufferTooSmall { needed });
        }
        out[hdr..hdr + inner.len()].copy_from_slice(inner);
        self.seal_in_place(now, out, inner.len(), next_header)
    }

    /// Seals without copying: the inner packet is already at `buf[header_len()..][..inner_len]`
    /// (e.g. read from the TUN device at that offset). Writes header, IV, padding, trailer and
    /// ICV around it and encrypts in place. Returns the ESP packet length (from `buf[0]`).
    pub fn seal_in_place(
        &mut self,
        now: Instant,
        buf: &mut [u8],
        inner_len: usize,
        next_header: u8,
    ) -> Result<usize, SealError> {
        self.life.admit(now).map_err(SealError::Expired)?;
        let hdr = self.header_len();
        let b = self.suite.block_len();
        let body = inner_len
            .checked_add(2 + b - 1)
            .map(|x| x / b * b)
            .ok_or(SealError::BufferTooSmall { needed: usize::MAX })?;
        let total = body
            .checked_add(hdr + self.suite.icv_len())
            .ok_or(SealError::BufferTooSmall { needed: usize::MAX })?;
        if buf.len() < total {
            return Err(SealError::BufferTooSmall { needed: total });
        }
        if !self
            .mode
            .check_payload(next_header, &buf[hdr..hdr + inner_len])
        {
            return Err(SealError::NextHeaderNotAllowed(next_header));
        }
        let seq = self.take_seq()?;
        let pad = body - inner_len - 2;
        let trailer = &mut buf[hdr + inner_len..hdr + body];
        for (i, p) in trailer[..pad].iter_mut().enumerate() {
            *p = (i + 1) as u8;
        }
        trailer[pad] = pad as u8;
        trailer[pad + 1] = next_header;
        self.protect(seq, &mut buf[..total], body)?;
        self.life.record(inner_len);
        Ok(total)
    }

    /// Consumes the next sequence number; never wraps.
    fn take_seq(&mut self) -> Result<u64, SealError> {
        if self.last_seq >= self.max_seq {
            self.life.hard_limit(LimitKind::SequenceNumber);
            return Err(SealError::Expired(LimitKind::SequenceNumber));
        }
        self.last_seq += 1;
        if self.last_seq >= self.soft_seq {
            self.life.soft_limit(LimitKind::SequenceNumber);
        }
        if self.last_seq == self.max_seq {
            // This packet goes out; the SA can send no other.
            self.life.hard_limit(LimitKind::SequenceNumber);
        }
        Ok(self.last_seq)
    }

    /// Writes SPI, sequence number and IV, encrypts `pkt[hdr..hdr + body]` and appends the
    /// ICV. `pkt` is exactly the packet.
    fn protect(&mut self, seq: u64, pkt: &mut [u8], body: usize) -> Result<(), SealError> {
        let hdr = self.suite.header_len();
        pkt[..4].copy_from_slice(&self.spi.to_be_bytes());
        pkt[4..8].copy_from_slice(&(seq as u32).to_be_bytes());
        match &self.cipher {
            SealCipher::Aead { key, salt } => {
                let iv = (seq ^ self.iv_mask).to_be_bytes();
                pkt[ESP_HEADER_LEN..hdr].copy_from_slice(&iv);
                let (aad, n) = aead_aad(self.spi, seq, self.esn);
                let (data, tag_out) = pkt[hdr..].split_at_mut(body);
                let tag = key
                    .seal_in_place_separate_tag(
                        crypto::aead_nonce(salt, &iv),
                        Aad::from(&aad[..n]),
                        data,
                    )
                    .map_err(|_| SealError::Crypto)?;
                tag_out.copy_from_slice(tag.as_ref());
                return Ok(());
            }
            SealCipher::Cbc(key) => {
                let mut iv = [0u8; 16];
                if let Some(src) = self.iv_source.as_mut() {
                    src.fill_iv(&mut iv);
                }
                pkt[ESP_HEADER_LEN..hdr].copy_from_slice(&iv);
                crypto::cbc_encrypt(key, &iv, &mut pkt[hdr..hdr + body])
                    .map_err(|_| SealError::Crypto)?;
            }
            SealCipher::Null => {}
        }
        let integ = self.integ.as_ref().ok_or(SealError::Crypto)?;
        let mut icv = [0u8; MAX_ICV];
        let covered = &pkt[..hdr + body];
        if self.esn {
            integ.compute(&[covered, &seq_high(seq)], &mut icv);
        } else {
            integ.compute(&[covered], &mut icv);
        }
        let n = integ.icv_len();
        pkt[hdr + body..hdr + body + n].copy_from_slice(&icv[..n]);
        Ok(())
    }

    /// Seals an arbitrary encrypted part (`body`: payload, padding and trailer as given, its
    /// length a multiple of the block size) so that tests and fuzzing can build authentic
    /// packets with bad padding or next header. Returns the packet length.
    pub(crate) fn seal_raw(&mut self, body: &[u8], out: &mut [u8]) -> Result<usize, SealError> {
        let hdr = self.header_len();
        let total = hdr + body.len() + self.suite.icv_len();
        if out.len() < total || body.len() % self.suite.block_len() != 0 {
            return Err(SealError::BufferTooSmall { needed: total });
        }
        let seq = self.take_seq()?;
        out[hdr..hdr + body.len()].copy_from_slice(body);
        self.protect(seq, &mut out[..total], body.len())?;
        Ok(total)
    }

    /// Places the sequence counter so that the next packet carries `next`, e.g. to test the
    /// 2^32 boundary without sealing four billion packets.
    #[cfg(test)]
    pub(crate) fn set_next_seq(&mut self, next: u64) {
        self.last_seq = next - 1;
    }
}

/// An inbound SA: checks and decrypts ESP packets in place.
pub struct InboundSa {
    spi: u32,
    suite: EspSuite,
    esn: bool,
    mode: Mode,
    cipher: OpenCipher,
    integ: Option<Integrity>,
    replay: ReplayWindow,
    life: LifeState,
}

impl fmt::Debug for InboundSa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboundSa")
            .field("spi", &format_args!("{:#010x}", self.spi))
            .field("suite", &self.suite)
            .field("esn", &self.esn)
            .field("mode", &self.mode)
            .field("replay", &self.replay)
            .field("life", &self.life)
            .finish_non_exhaustive()
    }
}

impl InboundSa {
    /// Installs an inbound SA at time `now`.
    pub fn new(config: SaConfig, now: Instant) -> Result<Self, ConfigError> {
        check_spi(config.spi)?;
        check_null(&config)?;
        let suite = config.keys.suite();
        let replay = ReplayWindow::new(config.replay_window)
            .ok_or(ConfigError::BadReplayWindow(config.replay_window))?;
        let cipher = OpenCipher::new(suite.encr(), config.keys.cipher_key(), config.keys.salt())
            .map_err(|_| ConfigError::BadKey)?;
        let integ = suite
            .integ()
            .map(|a| Integrity::new(a, config.keys.integ_key()));
        Ok(InboundSa {
            spi: config.spi,
            suite,
            esn: config.esn,
            mode: config.mode,
            cipher,
            integ,
            replay,
            life: LifeState::new(config.lifetime, now),
        })
    }

    /// The SA's SPI.
    pub fn spi(&self) -> u32 {
        self.spi
    }

    /// The SA's suite.
    pub fn suite(&self) -> EspSuite {
        self.suite
    }

    /// The anti-replay window.
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.replay
    }

    /// Packets and payload octets accepted.
    pub fn stats(&self) -> SaStats {
        self.life.stats
    }

    /// The next lifetime event to act on, if any (each is reported once).
    pub fn poll_event(&mut self) -> Option<SaEvent> {
        self.life.poll_event()
    }

    /// When [`Self::handle_timeout`] should next be called (a time limit), if ever.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.life.poll_timeout()
    }

    /// Applies the time limits at `now` (also done by every open).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.life.handle_timeout(now)
    }

    /// Whether a hard limit has ended the SA.
    pub fn is_expired(&self) -> bool {
        self.life.expired().is_some()
    }

    /// Checks and decrypts the ESP packet `packet` (the whole UDP payload, or IP payload) in
    /// place. On success the inner packet is `packet[payload]`. Whatever the input, this
    /// returns an error rather than panicking; the replay window moves only for
    /// authenticated packets.
    pub fn open(&mut self, now: Instant, packet: &mut [u8]) -> Result<Opened, OpenError> {
        self.life.admit(now).map_err(OpenError::Expired)?;
        let len = packet.len();
        if len < ESP_HEADER_LEN {
            return Err(OpenError::Truncated);
        }
        let spi = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]);
        if spi != self.spi {
            return Err(OpenError::WrongSpi(spi));
        }
        let hdr = self.suite.header_len();
        let icv_len = self.suite.icv_len();
        let b = self.suite.block_len();
        if len < hdr + b + icv_len {
            return Err(OpenError::Truncated);
        }
        let body = len - hdr - icv_len;
        if body % b != 0 {
            return Err(OpenError::BadLength);
        }
        let seq_low = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let seq = if self.esn {
            self.replay
                .infer_esn(seq_low)
                .ok_or(OpenError::Replay(ReplayError::TooOld))?
        } else {
            u64::from(seq_low)
        };
        self.replay.check(seq).map_err(OpenError::Replay)?;

        match &self.cipher {
            OpenCipher::Aead { key, salt } => {
                let nonce = crypto::aead_nonce(salt, &packet[ESP_HEADER_LEN..hdr]);
                let (aad, n) = aead_aad(spi, seq, self.esn);
                key.open_in_place(nonce, Aad::from(&aad[..n]), &mut packet[hdr..])
                    .map_err(|_| OpenError::AuthFailed)?;
            }
            OpenCipher::Cbc(_) | OpenCipher::Null => {
                let integ = self.integ.as_ref().ok_or(OpenError::AuthFailed)?;
                let (covered, icv) = packet.split_at(len - icv_len);
                let ok = if self.esn {
                    integ.verify(&[covered, &seq_high(seq)], icv)
                } else {
                    integ.verify(&[covered], icv)
                };
                if !ok {
                    return Err(OpenError::AuthFailed);
                }
                if let OpenCipher::Cbc(key) = &self.cipher {
                    let mut iv = [0u8; 16];
                    iv.copy_from_slice(&packet[ESP_HEADER_LEN..hdr]);
                    crypto::cbc_decrypt(key, &iv, &mut packet[hdr..hdr + body])
                        .map_err(|_| OpenError::BadLength)?;
                }
            }
        }
        // Authenticated: the sequence number is used, whatever the trailer holds.
        self.replay.commit(seq);

        let plain = &packet[hdr..hdr + body];
        let next_header = plain[body - 1];
        let pad_len = usize::from(plain[body - 2]);
        if pad_len + 2 > body {
            return Err(OpenError::BadPadding);
        }
        let payload_len = body - 2 - pad_len;
        let padding = &plain[payload_len..payload_len + pad_len];
        if padding
            .iter()
            .enumerate()
            .any(|(i, &p)| usize::from(p) != i + 1)
        {
            return Err(OpenError::BadPadding);
        }
        if !self.mode.check_payload(next_header, &plain[..payload_len]) {
            return Err(OpenError::NextHeaderNotAllowed(next_header));
        }
        self.life.record(payload_len);
        if next_header == NEXT_HEADER_DUMMY {
            return Ok(Opened::Dummy { seq });
        }
        Ok(Opened::Packet {
            next_header,
            payload: hdr..hdr + payload_len,
            seq,
        })
    }

    /// Mutable access to the replay window, e.g. to test ESN inference far into the sequence
    /// space.
    #[cfg(test)]
    pub(crate) fn replay_window_mut(&mut self) -> &mut ReplayWindow {
        &mut self.replay
    }
}
