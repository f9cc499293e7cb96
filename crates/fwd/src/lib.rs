//! The packet path's decision: given the installed [`HostTables`], the NIC a packet came from
//! and the packet, say where it goes ([`process`]). Pure and allocation-free: the caller owns
//! every buffer, ICMP errors are built into a buffer it passes in.
//!
//! Rules, in order (the same as the reference model in the tests):
//! 1. the IP header must be whole (IPv4 or IPv6), else `Malformed`;
//! 2. multicast and broadcast destinations are not forwarded;
//! 3. the source must be one of the sending NIC's addresses unless the NIC has IP forwarding;
//! 4. the destination is looked up in the sending NIC's compiled effective routes (longest
//!    prefix): VnetLocal → the owning NIC in the same VNet; VNetPeering → the owning NIC in the
//!    peered VNet, only if both links allow virtual network access, and, for forwarded traffic
//!    (source outside the sending VNet), only if the receiving side allows forwarded traffic;
//!    VirtualAppliance → the appliance's NIC (the same peering checks when it is across one);
//!    None, Internet, gateway routes → dropped;
//! 5. a NIC only receives packets addressed to it unless it has IP forwarding;
//! 6. the receiving NIC must be bound to a workload here;
//! 7. TTL / hop limit: ≤ 1 → ICMP time exceeded, else decremented (IPv4 checksum updated);
//! 8. a packet (or a GSO segment) larger than the receiving NIC's MTU → ICMP fragmentation
//!    needed / packet too big; except an IPv4 packet without DF (and not a GSO super-packet),
//!    which is fragmented as a router does ([`Verdict::Fragment`], [`frag::v4_fragment`]).

pub mod frag;
pub mod fuzzing;
pub mod icmp;

use plan::{Action, DropReason, HostTables, NicIdx};

pub use plan::DropReason as Reason;

/// What to do with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Write it (modified in place: TTL) to this NIC.
    Forward(NicIdx),
    /// An IPv4 packet without DF, larger than the NIC's MTU (TTL already decremented): write
    /// it to this NIC as the fragments [`frag::v4_fragment`] builds for `mtu`.
    Fragment {
        nic: NicIdx,
        mtu: u16,
    },
    /// Dropped; an ICMP error of `len` bytes was built in the reply buffer, to be written back
    /// to the sending NIC.
    Reply {
        reason: DropReason,
        len: usize,
    },
    Drop(DropReason),
}

/// The size a reply buffer must have for every ICMP error [`process`] builds.
pub const REPLY_BUF: usize = 1280;

#[inline]
fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}
#[inline]
fn be32(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}
#[inline]
fn be128(b: &[u8], i: usize) -> u128 {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[i..i + 16]);
    u128::from_be_bytes(a)
}

/// Length on the wire of one segment: the packet, or for a GSO super-packet the headers plus
/// `gso_size` bytes of payload.
#[inline]
fn segment_len(pkt: &[u8], l3: usize, proto: u8, total: usize, gso_size: u16) -> usize {
    if gso_size == 0 {
        return total;
    }
    let l4 = match proto {
        6 if pkt.len() >= l3 + 13 => usize::from(pkt[l3 + 12] >> 4) * 4,
        17 => 8,
        _ => 0,
    };
    (l3 + l4 + usize::from(gso_size)).min(total)
}

/// Decides the fate of one packet (an IP packet without any TUN header) that `ingress` sent.
/// `gso_size` is the segment size of a GSO super-packet, 0 for a plain packet.
pub fn process(
    t: &HostTables,
    ingress: NicIdx,
    pkt: &mut [u8],
    gso_size: u16,
    reply: &mut [u8],
) -> Verdict {
    let Some(nic) = t.nics.get(ingress as usize) else {
        return Verdict::Drop(DropReason::Unbound);
    };
    if pkt.is_empty() {
        return Verdict::Drop(DropReason::Malformed);
    }
    match pkt[0] >> 4 {
        4 => {
            if pkt.len() < 20 {
                return Verdict::Drop(DropReason::Malformed);
            }
            let ihl = usize::from(pkt[0] & 0xf) * 4;
            let total = usize::from(be16(pkt, 2));
            if ihl < 20 || total < ihl || total > pkt.len() {
                return Verdict::Drop(DropReason::Malformed);
            }
            let (src, dst) = (be32(pkt, 12), be32(pkt, 16));
            if dst >> 28 == 0xe || dst == u32::MAX {
                return Verdict::Drop(DropReason::Multicast);
            }
            if !nic.ip_forwarding && !nic.owns_v4(src) {
                return Verdict::Drop(DropReason::Spoofed);
            }
            let routes = &t.route_tables[nic.routes as usize].lpm;
            let vnet = &t.vnets[nic.vnet as usize];
            let target = match routes.lookup_v4(dst) {
                None => return Verdict::Drop(DropReason::NoRoute),
                Some(a) => match resolve(
                    t,
                    *a,
                    || vnet.hosts.lookup_v4(dst).copied(),
                    |v| t.vnets[v as usize].hosts.lookup_v4(dst).copied(),
                    || vnet.space.lookup_v4(src).is_some(),
                ) {
                    Ok(n) => n,
                    Err(r) => return Verdict::Drop(r),
                },
            };
            let out = &t.nics[target as usize];
            if !out.ip_forwarding && !out.owns_v4(dst) {
                return Verdict::Drop(DropReason::NotForwarding);
            }
            if out.binding.is_none() {
                return Verdict::Drop(DropReason::Unbound);
            }
            if pkt[8] <= 1 {
                return match icmp::v4_error(
                    reply,
                    nic.gw4,
                    &pkt[..total],
                    icmp::V4_TIME_EXCEEDED,
                    0,
                    0,
                ) {
                    Some(len) => Verdict::Reply {
                        reason: DropReason::TtlExceeded,
                        len,
                    },
                    None => Verdict::Drop(DropReason::TtlExceeded),
                };
            }
            if segment_len(pkt, ihl, pkt[9], total, gso_size) > usize::from(out.mtu) {
                let df = pkt[6] & 0x40 != 0;
                if df || gso_size != 0 {
                    if let Some(len) = icmp::v4_error(
                        reply,
                        nic.gw4,
                        &pkt[..total],
                        icmp::V4_UNREACHABLE,
                        icmp::V4_FRAG_NEEDED,
                        out.mtu,
                    ) {
                        return Verdict::Reply {
                            reason: DropReason::TooBig,
                            len,
                        };
                    }
                    return Verdict::Drop(DropReason::TooBig);
                }
                decrement_ttl(pkt);
                return Verdict::Fragment {
                    nic: target,
                    mtu: out.mtu,
                };
            }
            decrement_ttl(pkt);
            Verdict::Forward(target)
        }
        6 => {
            if pkt.len() < 40 {
                return Verdict::Drop(DropReason::Malformed);
            }
            let total = 40 + usize::from(be16(pkt, 4));
            if total > pkt.len() {
                return Verdict::Drop(DropReason::Malformed);
            }
            let (src, dst) = (be128(pkt, 8), be128(pkt, 24));
            if dst >> 120 == 0xff {
                return Verdict::Drop(DropReason::Multicast);
            }
            if !nic.ip_forwarding && !nic.owns_v6(src) {
                return Verdict::Drop(DropReason::Spoofed);
            }
            let routes = &t.route_tables[nic.routes as usize].lpm;
            let vnet = &t.vnets[nic.vnet as usize];
            let target = match routes.lookup_v6(dst) {
                None => return Verdict::Drop(DropReason::NoRoute),
                Some(a) => match resolve(
                    t,
                    *a,
                    || vnet.hosts.lookup_v6(dst).copied(),
                    |v| t.vnets[v as usize].hosts.lookup_v6(dst).copied(),
                    || vnet.space.lookup_v6(src).is_some(),
                ) {
                    Ok(n) => n,
                    Err(r) => return Verdict::Drop(r),
                },
            };
            let out = &t.nics[target as usize];
            if !out.ip_forwarding && !out.owns_v6(dst) {
                return Verdict::Drop(DropReason::NotForwarding);
            }
            if out.binding.is_none() {
                return Verdict::Drop(DropReason::Unbound);
            }
            if pkt[7] <= 1 {
                return match icmp::v6_error(
                    reply,
                    nic.gw6,
                    &pkt[..total],
                    icmp::V6_TIME_EXCEEDED,
                    0,
                    0,
                ) {
                    Some(len) => Verdict::Reply {
                        reason: DropReason::TtlExceeded,
                        len,
                    },
                    None => Verdict::Drop(DropReason::TtlExceeded),
                };
            }
            if segment_len(pkt, 40, pkt[6], total, gso_size) > usize::from(out.mtu) {
                return match icmp::v6_error(
                    reply,
                    nic.gw6,
                    &pkt[..total],
                    icmp::V6_PACKET_TOO_BIG,
                    0,
                    u32::from(out.mtu),
                ) {
                    Some(len) => Verdict::Reply {
                        reason: DropReason::TooBig,
                        len,
                    },
                    None => Verdict::Drop(DropReason::TooBig),
                };
            }
            pkt[7] -= 1;
            Verdict::Forward(target)
        }
        _ => Verdict::Drop(DropReason::Malformed),
    }
}

/// IPv4 TTL minus one, with the RFC 1624 incremental checksum update (the TTL is the high
/// byte of its 16-bit word).
#[inline]
fn decrement_ttl(pkt: &mut [u8]) {
    pkt[8] -= 1;
    let sum = u32::from(be16(pkt, 10)) + 0x0100;
    let sum = (sum & 0xffff) + (sum >> 16);
    pkt[10..12].copy_from_slice(&(sum as u16).to_be_bytes());
}

/// The NIC a route action delivers to, or why not.
#[inline]
fn resolve(
    _t: &HostTables,
    a: Action,
    local: impl FnOnce() -> Option<NicIdx>,
    remote: impl FnOnce(plan::VnetIdx) -> Option<NicIdx>,
    src_in_own_space: impl FnOnce() -> bool,
) -> Result<NicIdx, DropReason> {
    let (nic, peer) = match a {
        Action::Local => (local().ok_or(DropReason::NoSuchHost)?, None),
        Action::Peer(h) => (remote(h.vnet).ok_or(DropReason::NoSuchHost)?, Some(h)),
        Action::Appliance { nic, peer } => (nic, peer),
        Action::Drop(r) => return Err(r),
    };
    if let Some(h) = peer {
        if !h.access {
            return Err(DropReason::PeeringAccess);
        }
        if !h.forwarded && !src_in_own_space() {
            return Err(DropReason::ForwardedTraffic);
        }
    }
    Ok(nic)
}

#[cfg(test)]
mod tests;
