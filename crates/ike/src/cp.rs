//! The Configuration payload (RFC 7296 §3.15): how a remote-access client asks the gateway
//! for an inner ("virtual") address and DNS servers, and how the gateway answers. The wire
//! codec keeps CP as octets (`Payload::Other`); this module reads and writes them.

use crate::wire::{payload_type, Payload};
use std::net::Ipv4Addr;

pub const CFG_REQUEST: u8 = 1;
pub const CFG_REPLY: u8 = 2;

/// Attribute types.
pub mod attr {
    pub const INTERNAL_IP4_ADDRESS: u16 = 1;
    pub const INTERNAL_IP4_NETMASK: u16 = 2;
    pub const INTERNAL_IP4_DNS: u16 = 3;
}

/// (attribute type, value) pairs of a CP payload.
pub type Attrs = Vec<(u16, Vec<u8>)>;

/// A CP payload: its type and attributes.
pub fn payload(cfg_type: u8, attrs: &[(u16, Vec<u8>)]) -> Payload {
    let mut body = vec![cfg_type, 0, 0, 0];
    for (ty, v) in attrs {
        body.extend_from_slice(&(ty & 0x7fff).to_be_bytes());
        body.extend_from_slice(&(v.len() as u16).to_be_bytes());
        body.extend_from_slice(v);
    }
    Payload::Other {
        ty: payload_type::CP,
        body,
    }
}

/// The first CP payload of a message: (type, attributes); None if absent or malformed.
pub fn find(p: &[Payload]) -> Option<(u8, Attrs)> {
    let body = p.iter().find_map(|x| match x {
        Payload::Other { ty, body } if *ty == payload_type::CP => Some(body),
        _ => None,
    })?;
    let (&cfg_type, mut rest) = body.split_first()?;
    rest = rest.get(3..)?;
    let mut attrs = Vec::new();
    while !rest.is_empty() {
        let ty = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]) & 0x7fff;
        let len = usize::from(u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]));
        let v = rest.get(4..4 + len)?;
        attrs.push((ty, v.to_vec()));
        rest = &rest[4 + len..];
    }
    Some((cfg_type, attrs))
}

/// The IPv4 addresses of attribute `ty` (4-octet values only).
pub fn v4_values(attrs: &[(u16, Vec<u8>)], ty: u16) -> Vec<Ipv4Addr> {
    attrs
        .iter()
        .filter(|(t, v)| *t == ty && v.len() == 4)
        .map(|(_, v)| Ipv4Addr::new(v[0], v[1], v[2], v[3]))
        .collect()
}

/// Hands out inner addresses to remote-access peers; owned by the caller (a gateway shares
/// one pool among all its IKE SAs). The engine asks when a peer requests an address in
/// IKE_AUTH and gives it back when that IKE SA closes.
pub trait AddressPool: Send + Sync {
    /// An address for `peer` (the same one again for a peer that reconnects, if possible);
    /// None when the pool is exhausted.
    fn assign(&self, peer: &crate::Identity) -> Option<Ipv4Addr>;
    fn release(&self, addr: Ipv4Addr);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_malformed() {
        let p = payload(
            CFG_REPLY,
            &[
                (attr::INTERNAL_IP4_ADDRESS, vec![10, 3, 0, 1]),
                (attr::INTERNAL_IP4_DNS, vec![10, 0, 0, 53]),
                (attr::INTERNAL_IP4_ADDRESS, vec![]),
            ],
        );
        let (t, a) = find(std::slice::from_ref(&p)).unwrap();
        assert_eq!(t, CFG_REPLY);
        assert_eq!(
            v4_values(&a, attr::INTERNAL_IP4_ADDRESS),
            vec![Ipv4Addr::new(10, 3, 0, 1)]
        );
        assert_eq!(
            v4_values(&a, attr::INTERNAL_IP4_DNS),
            vec![Ipv4Addr::new(10, 0, 0, 53)]
        );
        let Payload::Other { body, .. } = p else {
            unreachable!()
        };
        for cut in 0..body.len() {
            let q = Payload::Other {
                ty: payload_type::CP,
                body: body[..cut].to_vec(),
            };
            // Truncations either parse (at an attribute boundary) or are refused; none panic.
            let _ = find(&[q]);
        }
        assert!(find(&[]).is_none());
    }
}
