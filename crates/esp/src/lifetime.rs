//! SA lifetimes (RFC 4301 §4.4.2.1): soft limits ask for a rekey, hard limits end the SA.

use core::fmt;
use std::time::{Duration, Instant};

/// One set of limits; `None` means no limit of that kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Time since the SA was installed.
    pub time: Option<Duration>,
    /// Octets of payload (inner packets) protected or accepted.
    pub bytes: Option<u64>,
    /// Packets protected or accepted.
    pub packets: Option<u64>,
}

/// Soft and hard lifetime of an SA.
///
/// On reaching a soft limit the SA reports [`SaEvent::RekeyNeeded`] once and keeps working.
/// Once a hard limit is reached it reports [`SaEvent::Expired`] and refuses to seal or open.
/// Byte limits are checked before each packet: the packet that crosses a byte limit is still
/// processed, the next one is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lifetime {
    pub soft: Limits,
    pub hard: Limits,
}

/// Which limit was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LimitKind {
    Time,
    Bytes,
    Packets,
    /// Outbound: the sequence number space is (nearly) used up; it never wraps (RFC 4303
    /// §3.3.3).
    SequenceNumber,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Time => "time",
            LimitKind::Bytes => "bytes",
            LimitKind::Packets => "packets",
            LimitKind::SequenceNumber => "sequence number",
        })
    }
}

/// Something the owner of an SA must act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaEvent {
    /// A soft limit was reached: negotiate a replacement SA.
    RekeyNeeded(LimitKind),
    /// A hard limit was reached: the SA refuses all further packets; delete it.
    Expired(LimitKind),
}

/// Counters of an SA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SaStats {
    /// Packets sealed (outbound) or accepted (inbound), dummy packets included.
    pub packets: u64,
    /// Payload octets of those packets (inner packets, without ESP overhead).
    pub bytes: u64,
}

#[derive(Clone, Debug)]
pub(crate) struct LifeState {
    soft: Limits,
    hard: Limits,
    soft_deadline: Option<Instant>,
    hard_deadline: Option<Instant>,
    pub(crate) stats: SaStats,
    soft_reached: Option<LimitKind>,
    expired: Option<LimitKind>,
    soft_reported: bool,
    hard_reported: bool,
}

impl LifeState {
    pub(crate) fn new(lifetime: Lifetime, now: Instant) -> Self {
        LifeState {
            soft: lifetime.soft,
            hard: lifetime.hard,
            soft_deadline: lifetime.soft.time.and_then(|d| now.checked_add(d)),
            hard_deadline: lifetime.hard.time.and_then(|d| now.checked_add(d)),
            stats: SaStats::default(),
            soft_reached: None,
            expired: None,
            soft_reported: false,
            hard_reported: false,
        }
    }

    /// The limit that ended the SA, if any.
    pub(crate) fn expired(&self) -> Option<LimitKind> {
        self.expired
    }

    pub(crate) fn soft_limit(&mut self, kind: LimitKind) {
        if self.soft_reached.is_none() && self.expired.is_none() {
            self.soft_reached = Some(kind);
        }
    }

    pub(crate) fn hard_limit(&mut self, kind: LimitKind) {
        if self.expired.is_none() {
            self.expired = Some(kind);
        }
    }

    /// Applies the time limits and refuses if a hard limit is reached.
    pub(crate) fn admit(&mut self, now: Instant) -> Result<(), LimitKind> {
        self.handle_timeout(now);
        if self.expired.is_none() {
            if self.hard.packets.is_some_and(|l| self.stats.packets >= l) {
                self.hard_limit(LimitKind::Packets);
            } else if self.hard.bytes.is_some_and(|l| self.stats.bytes >= l) {
                self.hard_limit(LimitKind::Bytes);
            }
        }
        match self.expired {
            Some(k) => Err(k),
            None => Ok(()),
        }
    }

    /// Counts one processed packet and applies the volume limits.
    pub(crate) fn record(&mut self, payload_len: usize) {
        self.stats.packets += 1;
        self.stats.bytes = self.stats.bytes.saturating_add(payload_len as u64);
        if self.soft.packets.is_some_and(|l| self.stats.packets >= l) {
            self.soft_limit(LimitKind::Packets);
        } else if self.soft.bytes.is_some_and(|l| self.stats.bytes >= l) {
            self.soft_limit(LimitKind::Bytes);
        }
        if self.hard.packets.is_some_and(|l| self.stats.packets >= l) {
            self.hard_limit(LimitKind::Packets);
        } else if self.hard.bytes.is_some_and(|l| self.stats.bytes >= l) {
            self.hard_limit(LimitKind::Bytes);
        }
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        if self.soft_deadline.is_some_and(|d| now >= d) {
            self.soft_limit(LimitKind::Time);
        }
        if self.hard_deadline.is_some_and(|d| now >= d) {
            self.hard_limit(LimitKind::Time);
        }
    }

    pub(crate) fn poll_timeout(&self) -> Option<Instant> {
        if self.expired.is_some() {
            return None;
        }
        match (self.soft_reached, self.soft_deadline, self.hard_deadline) {
            (None, Some(s), Some(h)) => Some(s.min(h)),
            (None, Some(s), None) => Some(s),
            (_, _, h) => h,
        }
    }

    pub(crate) fn poll_event(&mut self) -> Option<SaEvent> {
        if !self.soft_reported {
            if let Some(k) = self.soft_reached {
                self.soft_reported = true;
                return Some(SaEvent::RekeyNeeded(k));
            }
        }
        if !self.hard_reported {
            if let Some(k) = self.expired {
                self.hard_reported = true;
                // A hard limit implies the soft one: never report a rekey after the expiry.
                self.soft_reported = true;
                return Some(SaEvent::Expired(k));
            }
        }
        None
    }
}
