//! Traffic selectors: from CIDRs, narrowing (RFC 7296 §2.9), back to CIDRs for routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use crate::wire::TrafficSelector;

fn to_u128(a: IpAddr) -> (bool, u128) {
    match a {
        IpAddr::V4(a) => (false, u32::from(a) as u128),
        IpAddr::V6(a) => (true, u128::from(a)),
    }
}

fn from_u128(v6: bool, v: u128) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(v))
    } else {
        IpAddr::V4(Ipv4Addr::from(v as u32))
    }
}

/// A selector covering a whole prefix, all protocols and ports.
pub fn from_cidr(addr: IpAddr, prefix: u8) -> Option<TrafficSelector> {
    let (v6, a) = to_u128(addr);
    let bits = if v6 { 128 } else { 32 };
    if prefix > bits {
        return None;
    }
    let host = if prefix == bits {
        0
    } else if bits - prefix == 128 {
        u128::MAX
    } else {
        (1u128 << (bits - prefix)) - 1
    };
    let start = a & !host;
    Some(TrafficSelector {
        protocol: 0,
        start_port: 0,
        end_port: 65535,
        start: from_u128(v6, start),
        end: from_u128(v6, start | host),
    })
}

/// Parses `10.0.0.0/24` (or a bare address as /32, /128).
pub fn parse_cidr(s: &str) -> Option<TrafficSelector> {
    let (a, p) = match s.split_once('/') {
        Some((a, p)) => (
            a.trim().parse::<IpAddr>().ok()?,
            Some(p.trim().parse::<u8>().ok()?),
        ),
        None => (s.trim().parse::<IpAddr>().ok()?, None),
    };
    let p = p.unwrap_or(if a.is_ipv6() { 128 } else { 32 });
    from_cidr(a, p)
}

/// The intersection of two selectors, if not empty.
pub fn intersect(a: &TrafficSelector, b: &TrafficSelector) -> Option<TrafficSelector> {
    let (a6, a_s) = to_u128(a.start);
    let (_, a_e) = to_u128(a.end);
    let (b6, b_s) = to_u128(b.start);
    let (_, b_e) = to_u128(b.end);
    if a6 != b6 || a.end.is_ipv6() != a6 || b.end.is_ipv6() != b6 {
        return None;
    }
    let protocol = match (a.protocol, b.protocol) {
        (0, p) | (p, 0) => p,
        (p, q) if p == q => p,
        _ => return None,
    };
    let s = a_s.max(b_s);
    let e = a_e.min(b_e);
    let sp = a.start_port.max(b.start_port);
    let ep = a.end_port.min(b.end_port);
    if s > e || sp > ep {
        return None;
    }
    Some(TrafficSelector {
        protocol,
        start_port: sp,
        end_port: ep,
        start: from_u128(a6, s),
        end: from_u128(a6, e),
    })
}

/// Whether `inner` lies within `outer`.
pub fn contains(outer: &TrafficSelector, inner: &TrafficSelector) -> bool {
    intersect(outer, inner).as_ref() == Some(inner)
}

/// Narrows what the peer proposed to what our policy allows (every non-empty pairwise
/// intersection, in the peer's order, duplicates removed). Empty = TS_UNACCEPTABLE.
pub fn narrow(proposed: &[TrafficSelector], policy: &[TrafficSelector]) -> Vec<TrafficSelector> {
    let mut out: Vec<TrafficSelector> = Vec::new();
    for p in proposed {
        for q in policy {
            if let Some(x) = intersect(p, q) {
                if !out.contains(&x) {
                    out.push(x);
                }
            }
        }
    }
    out
}

/// Whether every selector the responder returned lies within one we proposed.
pub fn all_within(returned: &[TrafficSelector], proposed: &[TrafficSelector]) -> bool {
    !returned.is_empty()
        && returned
            .iter()
            .all(|r| proposed.iter().any(|p| contains(p, r)))
}

/// The smallest list of CIDR prefixes covering a selector's address range (for routes).
pub fn to_cidrs(ts: &TrafficSelector) -> Vec<(IpAddr, u8)> {
    let (v6, mut s) = to_u128(ts.start);
    let (_, e) = to_u128(ts.end);
    let bits: u32 = if v6 { 128 } else { 32 };
    let mut out = Vec::new();
    if s > e {
        return out;
    }
    loop {
        // Largest block aligned at s and not past e.
        let mut size = if s == 0 {
            bits
        } else {
            s.trailing_zeros().min(bits)
        };
        while size > 0 {
            let span = if size == 128 {
                u128::MAX
            } else {
                (1u128 << size) - 1
            };
            if s.checked_add(span).is_some_and(|end| end <= e) {
                break;
            }
            size -= 1;
        }
        out.push((from_u128(v6, s), (bits - size) as u8));
        let span = if size == 128 {
            u128::MAX
        } else {
            (1u128 << size) - 1
        };
        match s.checked_add(span) {
            Some(end) if end < e => s = end + 1,
            _ => break,
        }
    }
    out
}

/// `10.0.0.0/24` style text for a selector (a range that is not one prefix prints as a-b).
pub fn display(ts: &TrafficSelector) -> String {
    let c = to_cidrs(ts);
    let mut s = if c.len() == 1 {
        format!("{}/{}", c[0].0, c[0].1)
    } else {
        format!("{}-{}", ts.start, ts.end)
    };
    if ts.protocol != 0 {
        s.push_str(&format!("[{}", ts.protocol));
        if ts.start_port != 0 || ts.end_port != 65535 {
            s.push_str(&format!("/{}-{}", ts.start_port, ts.end_port));
        }
        s.push(']');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_narrowing_and_back() {
        let wide = parse_cidr("10.0.0.0/8").unwrap();
        let narrow_p = parse_cidr("10.1.0.0/16").unwrap();
        let other = parse_cidr("192.168.0.0/16").unwrap();
        assert_eq!(narrow(&[wide], &[narrow_p]), vec![narrow_p]);
        assert!(narrow(&[other], &[wide]).is_empty());
        assert!(all_within(&[narrow_p], &[wide]));
        assert!(!all_within(&[wide], &[narrow_p]));
        assert_eq!(to_cidrs(&wide), vec![("10.0.0.0".parse().unwrap(), 8)]);
        let any = parse_cidr("0.0.0.0/0").unwrap();
        assert_eq!(to_cidrs(&any), vec![("0.0.0.0".parse().unwrap(), 0)]);
        let any6 = parse_cidr("::/0").unwrap();
        assert_eq!(to_cidrs(&any6), vec![("::".parse().unwrap(), 0)]);
        let r = TrafficSelector {
            start: "10.0.0.1".parse().unwrap(),
            end: "10.0.0.6".parse().unwrap(),
            ..wide
        };
        assert_eq!(display(&r), "10.0.0.1-10.0.0.6");
        assert_eq!(to_cidrs(&r).len(), 4); // .1/32 .2/31 .4/31 .6/32
        assert!(intersect(&wide, &any6).is_none());
    }
}
