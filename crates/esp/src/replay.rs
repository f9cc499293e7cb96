//! Anti-replay window (RFC 4303 §3.4.3) with extended sequence numbers (RFC 4303 §2.2.1 and
//! Appendix A).
//!
//! The window is a ring of bits indexed by `seq mod size`, over the 64-bit sequence space. The
//! right edge `top` is the highest sequence number that passed the integrity check; the window
//! covers `top - size + 1 ..= top`. A receiver first calls [`ReplayWindow::check`] (before the
//! integrity check, to drop replays cheaply), and [`ReplayWindow::commit`] only once the packet
//! is authenticated, so forged packets never move the window.

use core::fmt;

/// Smallest window size accepted (bits).
pub const MIN_WINDOW: u32 = 64;
/// Largest window size accepted (bits).
pub const MAX_WINDOW: u32 = 1 << 16;
/// Default window size (bits).
pub const DEFAULT_WINDOW: u32 = 1024;

/// Why a sequence number is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplayError {
    /// Sequence number 0 is never sent (RFC 4303 §3.3.3: the first packet carries 1).
    Zero,
    /// Already received.
    Duplicate,
    /// Left of the window: too old to tell.
    TooOld,
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplayError::Zero => "sequence number zero",
            ReplayError::Duplicate => "duplicate sequence number",
            ReplayError::TooOld => "sequence number left of the replay window",
        })
    }
}

impl std::error::Error for ReplayError {}

/// A sliding anti-replay bitmap.
#[derive(Clone)]
pub struct ReplayWindow {
    /// Highest authenticated sequence number (0: none yet).
    top: u64,
    /// Window size in bits, a power of two.
    size: u64,
    /// `size / 64` words; bit `s mod size` is set when `s` (within the window) was received.
    bits: Box<[u64]>,
}

impl fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("top", &self.top)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl ReplayWindow {
    /// A window of `size` bits: a power of two from [`MIN_WINDOW`] to [`MAX_WINDOW`].
    pub fn new(size: u32) -> Option<Self> {
        if !(MIN_WINDOW..=MAX_WINDOW).contains(&size) || !size.is_power_of_two() {
            return None;
        }
        Some(ReplayWindow {
            top: 0,
            size: u64::from(size),
            bits: vec![0u64; size as usize / 64].into_boxed_slice(),
        })
    }

    /// Window size in bits.
    pub fn size(&self) -> u32 {
        self.size as u32
    }

    /// Highest authenticated sequence number so far (0 if none).
    pub fn top(&self) -> u64 {
        self.top
    }

    /// Infers the full 64-bit sequence number of a packet that carries only its low 32 bits,
    /// as in RFC 4303 Appendix A.2.1. Returns `None` only if the result would pass 2^64 - 1.
    ///
    /// Unlike a literal reading of the appendix, when the window is at the very start of the
    /// sequence space (high half 0) a low half above the window is taken as subspace 0, not
    /// as subspace -1, which does not exist.
    pub fn infer_esn(&self, seq_low: u32) -> Option<u64> {
        let tl = self.top as u32;
        let th = (self.top >> 32) as u32;
        let w = self.size as u32;
        let bottom = tl.wrapping_sub(w - 1);
        let seq_high = if tl >= w - 1 {
            // Case A: the window lies within one subspace.
            if seq_low >= bottom {
                th
            } else {
                th.checked_add(1)?
            }
        } else {
            // Case B: the window spans two subspaces.
            if seq_low >= bottom {
                th.saturating_sub(1)
            } else {
                th
            }
        };
        Some((u64::from(seq_high) << 32) | u64::from(seq_low))
    }

    /// Whether `seq` may be accepted: not zero, not left of the window, not seen.
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        if seq == 0 {
            return Err(ReplayError::Zero);
        }
        if seq > self.top {
            return Ok(());
        }
        if self.top - seq >= self.size {
            return Err(ReplayError::TooOld);
        }
        if self.get(seq) {
            Err(ReplayError::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Records an authenticated packet's sequence number, sliding the window right if needed.
    /// Numbers left of the window, and zero, are ignored.
    pub fn commit(&mut self, seq: u64) {
        if seq == 0 {
            return;
        }
        if seq > self.top {
            let diff = seq - self.top;
            if diff >= self.size {
                self.bits.fill(0);
            } else {
                self.clear_range(self.top + 1, seq);
            }
            self.top = seq;
        } else if self.top - seq >= self.size {
            return;
        }
        let (w, b) = self.index(seq);
        self.bits[w] |= 1 << b;
    }

    /// Places the right edge at `top` with an empty window, as if `top` had just been received.
    /// For tests and for resuming an SA; never needed in normal operation.
    pub fn reset_to(&mut self, top: u64) {
        self.bits.fill(0);
        self.top = 0;
        self.commit(top);
    }

    fn index(&self, seq: u64) -> (usize, u32) {
        let i = seq & (self.size - 1);
        ((i / 64) as usize, (i % 64) as u32)
    }

    fn get(&self, seq: u64) -> bool {
        let (w, b) = self.index(seq);
        self.bits[w] & (1 << b) != 0
    }

    /// Clears the bits of `from ..= to` (at most `size` numbers), a word at a time. `to` may be
    /// `u64::MAX`.
    fn clear_range(&mut self, from: u64, to: u64) {
        let mut s = from;
        let mut left = to - from + 1;
        while left > 0 {
            let (w, b) = self.index(s);
            let n = (64 - u64::from(b)).min(left);
            let mask = if n == 64 {
                u64::MAX
            } else {
                ((1u64 << n) - 1) << b
            };
            self.bits[w] &= !mask;
            s = s.wrapping_add(n);
            left -= n;
        }
    }
}
