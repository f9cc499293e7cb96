//! ICMP and ICMPv6 error messages, built into caller buffers (RFC 792, RFC 1812 §4.3.2,
//! RFC 4443).

use std::net::{Ipv4Addr, Ipv6Addr};

pub const V4_UNREACHABLE: u8 = 3;
pub const V4_FRAG_NEEDED: u8 = 4;
pub const V4_TIME_EXCEEDED: u8 = 11;
pub const V6_PACKET_TOO_BIG: u8 = 2;
pub const V6_TIME_EXCEEDED: u8 = 3;

/// Largest ICMP error datagram: 576 bytes for IPv4 (RFC 1812), 1280 for IPv6 (RFC 4443).
const V4_MAX: usize = 576;
const V6_MAX: usize = 1280;

/// The Internet checksum of `data` folded into `sum`.
pub fn checksum(mut sum: u32, data: &[u8]) -> u16 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether an IPv4 packet may be answered with an ICMP error: not about an ICMP error, not a
/// non-first fragment, not from an unspecified, multicast or broadcast source.
fn v4_may_answer(orig: &[u8]) -> bool {
    let src = u32::from_be_bytes([orig[12], orig[13], orig[14], orig[15]]);
    if src == 0 || src >> 28 == 0xe || src == u32::MAX {
        return false;
    }
    let frag_off = u16::from_be_bytes([orig[6], orig[7]]) & 0x1fff;
    if frag_off != 0 {
        return false;
    }
    let ihl = usize::from(orig[0] & 0xf) * 4;
    if orig[9] == 1 && orig.len() > ihl {
        // Only queries (echo, timestamp, ...) may be answered with errors.
        return matches!(orig[ihl], 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18);
    }
    true
}

/// Builds an ICMP error about `orig` (the IPv4 packet, header first) from `src` into `out`;
/// returns its length, or None when no error may be sent.
pub fn v4_error(
    out: &mut [u8],
    src: Ipv4Addr,
    orig: &[u8],
    ty: u8,
    code: u8,
    mtu: u16,
) -> Option<usize> {
    if src.is_unspecified() || orig.len() < 20 || !v4_may_answer(orig) {
        return None;
    }
    let quote = orig
        .len()
        .min(V4_MAX - 28)
        .min(out.len().saturating_sub(28));
    let len = 28 + quote;
    let o = &mut out[..len];
    o[0] = 0x45;
    o[1] = 0xc0; // internetwork control
    o[2..4].copy_from_slice(&(len as u16).to_be_bytes());
    o[4..8].copy_from_slice(&[0, 0, 0, 0]);
    o[8] = 64;
    o[9] = 1;
    o[10..12].copy_from_slice(&[0, 0]);
    o[12..16].copy_from_slice(&src.octets());
    o[16..20].copy_from_slice(&orig[12..16]);
    let c = checksum(0, &o[..20]);
    o[10..12].copy_from_slice(&c.to_be_bytes());
    o[20] = ty;
    o[21] = code;
    o[22..24].copy_from_slice(&[0, 0]);
    o[24..26].copy_from_slice(&[0, 0]);
    o[26..28].copy_from_slice(&mtu.to_be_bytes());
    o[28..].copy_from_slice(&orig[..quote]);
    let c = checksum(0, &o[20..]);
    o[22..24].copy_from_slice(&c.to_be_bytes());
    Some(len)
}

/// Builds an ICMPv6 error about `orig` (the IPv6 packet) from `src` into `out`.
pub fn v6_error(
    out: &mut [u8],
    src: Ipv6Addr,
    orig: &[u8],
    ty: u8,
    code: u8,
    param: u32,
) -> Option<usize> {
    if src.is_unspecified() || orig.len() < 40 {
        return None;
    }
    let osrc: [u8; 16] = orig[8..24].try_into().ok()?;
    if osrc == [0; 16] || osrc[0] == 0xff {
        return None;
    }
    // Not about an ICMPv6 error (types below 128) when the ICMPv6 header follows directly.
    if orig[6] == 58 && orig.len() > 40 && orig[40] < 128 {
        return None;
    }
    let quote = orig
        .len()
        .min(V6_MAX - 48)
        .min(out.len().saturating_sub(48));
    let len = 48 + quote;
    let plen = (8 + quote) as u16;
    let o = &mut out[..len];
    o[0..4].copy_from_slice(&[0x60, 0, 0, 0]);
    o[4..6].copy_from_slice(&plen.to_be_bytes());
    o[6] = 58;
    o[7] = 64;
    o[8..24].copy_from_slice(&src.octets());
    o[24..40].copy_from_slice(&osrc);
    o[40] = ty;
    o[41] = code;
    o[42..44].copy_from_slice(&[0, 0]);
    o[44..48].copy_from_slice(&param.to_be_bytes());
    o[48..].copy_from_slice(&orig[..quote]);
    // Pseudo-header: source, destination, upper-layer length, next header.
    let mut sum = 0u32;
    for c in o[8..40].chunks_exact(2) {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    sum += u32::from(plen) + 58;
    let c = checksum(sum, &o[40..]);
    o[42..44].copy_from_slice(&c.to_be_bytes());
    Some(len)
}
