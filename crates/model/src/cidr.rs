//! Address prefixes: strict parsing (canonical CIDR only, as Azure demands), overlap and
//! containment, the addresses Azure reserves in every subnet, and the ranges Azure forbids in
//! an address space.

use crate::error::{ArmError, ArmResult};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parses a prefix in canonical CIDR form. `what` names the field for the error message.
pub fn parse_prefix(s: &str, what: &str) -> ArmResult<IpNet> {
    let net: IpNet = s.parse().map_err(|_| {
        ArmError::bad(
            "InvalidAddressPrefixFormat",
            format!("{what} '{s}' is not a valid CIDR address prefix."),
        )
    })?;
    if net.trunc() != net {
        return Err(ArmError::bad(
            "InvalidCIDRNotation",
            format!(
                "The address prefix {s} in {what} has an invalid CIDR notation. For the given prefix length, the address prefix should be {}.",
                net.trunc()
            ),
        ));
    }
    Ok(net)
}

pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// All prefixes of `a` that overlap any prefix of `b`, formatted, deduplicated, in order.
pub fn overlapping(a: &[IpNet], b: &[IpNet]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for x in a {
        for y in b {
            if overlaps(x, y) {
                // Azure reports the smaller (more specific) of the two.
                let s = if x.prefix_len() >= y.prefix_len() {
                    x
                } else {
                    y
                }
                .to_string();
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// Ranges Azure refuses in a VNet address space (virtual-networks FAQ).
pub fn forbidden_in_vnet(net: &IpNet) -> Option<&'static str> {
    const V4: [(&str, &str); 5] = [
        ("224.0.0.0/4", "multicast"),
        ("255.255.255.255/32", "broadcast"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("168.63.129.16/32", "Azure platform (internal DNS)"),
    ];
    match net {
        IpNet::V4(_) => V4.iter().find_map(|(p, why)| {
            let f: IpNet = p.parse().expect("constant prefix");
            overlaps(&f, net).then_some(*why)
        }),
        IpNet::V6(n) => {
            let a = n.network();
            if a.is_loopback() || a.is_multicast() || (a.segments()[0] & 0xffc0) == 0xfe80 {
                Some("reserved IPv6")
            } else {
                None
            }
        }
    }
}

/// Number of addresses in a prefix, saturating (IPv6 /64 and larger count as u128::MAX-ish).
pub fn size(net: &IpNet) -> u128 {
    let bits = net.max_prefix_len() - net.prefix_len();
    if bits >= 128 {
        u128::MAX
    } else {
        1u128 << bits
    }
}

pub fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v) => u32::from(v) as u128,
        IpAddr::V6(v) => u128::from(v),
    }
}

pub fn from_u128(v: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

/// Whether Azure reserves this address in the subnet: the network address, .1 (gateway),
/// .2 and .3 (Azure DNS) and, for IPv4, the broadcast address.
pub fn is_reserved(subnet: &IpNet, addr: IpAddr) -> bool {
    let base = to_u128(subnet.network());
    let a = to_u128(addr);
    if a < base || a > base + 3 {
        match subnet {
            IpNet::V4(_) => addr == subnet.broadcast(),
            IpNet::V6(_) => false,
        }
    } else {
        true
    }
}

/// The first address a dynamic allocation may hand out (x.x.x.4).
pub fn first_usable(subnet: &IpNet) -> u128 {
    to_u128(subnet.network()) + 4
}

/// The last address a dynamic allocation may hand out.
pub fn last_usable(subnet: &IpNet) -> u128 {
    match subnet {
        IpNet::V4(n) => u32::from(n.broadcast()) as u128 - 1,
        IpNet::V6(n) => u128::from(n.broadcast()),
    }
}

/// Azure's gateway address of a subnet (x.x.x.1), used as next hop for VnetLocal.
pub fn subnet_gateway(subnet: &IpNet) -> IpAddr {
    from_u128(to_u128(subnet.network()) + 1, subnet.network().is_ipv6())
}

pub fn v4(s: &str) -> IpNet {
    IpNet::V4(s.parse::<Ipv4Net>().expect("constant prefix"))
}

pub fn v6(s: &str) -> IpNet {
    IpNet::V6(s.parse::<Ipv6Net>().expect("constant prefix"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_only() {
        assert!(parse_prefix("10.0.0.0/16", "x").is_ok());
        let e = parse_prefix("10.0.0.1/16", "x").unwrap_err();
        assert_eq!(e.code, "InvalidCIDRNotation");
        assert!(e.message.contains("10.0.0.0/16"));
        assert_eq!(
            parse_prefix("10.0.0/16", "x").unwrap_err().code,
            "InvalidAddressPrefixFormat"
        );
        assert_eq!(
            parse_prefix("10.0.0.0/33", "x").unwrap_err().code,
            "InvalidAddressPrefixFormat"
        );
        assert!(parse_prefix("fd00:1::/64", "x").is_ok());
    }

    #[test]
    fn reserved_addresses() {
        let s = v4("10.0.1.0/24");
        for a in ["10.0.1.0", "10.0.1.1", "10.0.1.2", "10.0.1.3", "10.0.1.255"] {
            assert!(is_reserved(&s, a.parse().unwrap()), "{a}");
        }
        for a in ["10.0.1.4", "10.0.1.254"] {
            assert!(!is_reserved(&s, a.parse().unwrap()), "{a}");
        }
        assert_eq!(last_usable(&s) - first_usable(&s) + 1, 251);
        let s29 = v4("10.0.0.0/29");
        assert_eq!(last_usable(&s29) - first_usable(&s29) + 1, 3);
    }

    #[test]
    fn overlap_report() {
        let a = [v4("10.1.0.0/16")];
        let b = [v4("10.1.1.0/24"), v4("10.2.0.0/16"), v4("10.1.2.0/24")];
        assert_eq!(overlapping(&a, &b), vec!["10.1.1.0/24", "10.1.2.0/24"]);
        assert!(forbidden_in_vnet(&v4("127.0.0.0/16")).is_some());
        assert!(forbidden_in_vnet(&v4("10.0.0.0/8")).is_none());
    }
}
