//! IPv4 fragmentation (RFC 791 §3.2, RFC 1812 §4.2.2.7) into caller-owned buffers, and
//! completing a checksum that a sender left to offload.

use crate::icmp::checksum;

/// The header of a fragment other than the first: the options with the "copied" flag only
/// (RFC 791: security, source routes), padded with end-of-options to a 4-byte multiple.
/// Returns its length.
fn later_header(hdr: &[u8], out: &mut [u8]) -> usize {
    out[..20].copy_from_slice(&hdr[..20]);
    let mut n = 20;
    let mut i = 20;
    while i < hdr.len() {
        let ty = hdr[i];
        let len = match ty {
            0 => break,
            1 => 1,
            _ if i + 1 < hdr.len() => usize::from(hdr[i + 1]).max(2),
            _ => break,
        };
        if i + len > hdr.len() {
            break;
        }
        if ty & 0x80 != 0 {
            out[n..n + len].copy_from_slice(&hdr[i..i + len]);
            n += len;
        }
        i += len;
    }
    let padded = n.div_ceil(4) * 4;
    out[n..padded].fill(0);
    padded
}

/// Builds into `out` the fragment of the IPv4 packet `pkt` (whole header first, its DF bit
/// clear) that starts `off` bytes into its payload, no larger than `mtu`. Returns the
/// fragment's length and the payload offset of the next one, or None when `off` is past the
/// payload, the packet is malformed, or `mtu` leaves no room for 8 bytes of payload.
/// Fragments of a fragment keep its offset and its more-fragments flag on the last piece.
/// Callers loop from `off = 0`; `out` needs `mtu` bytes.
pub fn v4_fragment(pkt: &[u8], mtu: u16, off: usize, out: &mut [u8]) -> Option<(usize, usize)> {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(pkt[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || total < ihl || total > pkt.len() {
        return None;
    }
    let payload = &pkt[ihl..total];
    if off >= payload.len() && !(off == 0 && payload.is_empty()) {
        return None;
    }
    let mtu = usize::from(mtu).min(out.len());
    let hl = if off == 0 {
        out[..ihl].copy_from_slice(&pkt[..ihl]);
        ihl
    } else {
        later_header(&pkt[..ihl], out)
    };
    if mtu < hl + 8 {
        return None;
    }
    let room = (mtu - hl) & !7;
    let take = (payload.len() - off).min(room);
    if take == 0 {
        // Nothing to carry (a header-only packet): no fragment, so a caller's loop ends.
        return None;
    }
    let last = off + take == payload.len();
    let flags_off = u16::from_be_bytes([pkt[6], pkt[7]]);
    let orig_mf = flags_off & 0x2000 != 0;
    let frag_off = (flags_off & 0x1fff) + (off / 8) as u16;
    let mf = if last { orig_mf } else { true };
    let o = &mut out[..hl + take];
    o[0] = 0x40 | (hl / 4) as u8;
    o[2..4].copy_from_slice(&((hl + take) as u16).to_be_bytes());
    // Reserved bit kept, DF clear (only packets without DF are fragmented).
    let word = (flags_off & 0x8000) | if mf { 0x2000 } else { 0 } | frag_off;
    o[6..8].copy_from_slice(&word.to_be_bytes());
    o[10..12].copy_from_slice(&[0, 0]);
    let c = checksum(0, &o[..hl]);
    o[10..12].copy_from_slice(&c.to_be_bytes());
    o[hl..].copy_from_slice(&payload[off..off + take]);
    Some((hl + take, off + take))
}

/// Completes a checksum left partial by a sender that offloads it (virtio_net_hdr
/// NEEDS_CSUM) in the IPv4 packet `pkt`: the 16-bit field at `start + offset` holds the
/// pseudo-header sum; the sum of everything from `start` to the end of the packet (its total
/// length) is folded in and stored there. `start` and `offset` come from the workload's
/// virtio-net header, which a root user there can forge (`PACKET_VNET_HDR`): false — nothing
/// written — unless the field lies inside the payload, so the IP header (and with it the
/// length the fragmenter trusts) is never touched.
pub fn complete_checksum(pkt: &mut [u8], start: usize, offset: usize) -> bool {
    if pkt.len() < 20 || pkt[0] >> 4 != 4 {
        return false;
    }
    let ihl = usize::from(pkt[0] & 0xf) * 4;
    let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
    if ihl < 20 || total > pkt.len() || start < ihl || start >= total {
        return false;
    }
    let Some(at) = start.checked_add(offset) else {
        return false;
    };
    if at + 2 > total {
        return false;
    }
    let c = checksum(0, &pkt[start..total]);
    pkt[at..at + 2].copy_from_slice(&c.to_be_bytes());
    true
}
