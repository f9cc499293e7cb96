//! Longest-prefix match over IPv4 and IPv6 prefixes, built once and then only read.
//!
//! Tables here are small (a VNet's routes: tens of prefixes, a handful of distinct lengths),
//! so the structure is one sorted array of masked keys per prefix length, longest first; a
//! lookup is at most one binary search per distinct length and never allocates.

use ipnet::IpNet;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Level<T> {
    len: u8,
    mask: u128,
    keys: Vec<u128>,
    vals: Vec<T>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Family<T> {
    /// Sorted by prefix length, longest first.
    levels: Vec<Level<T>>,
}

impl<T> Default for Family<T> {
    fn default() -> Self {
        Family { levels: Vec::new() }
    }
}

fn mask(len: u8, bits: u8) -> u128 {
    if len == 0 {
        0
    } else {
        let m = u128::MAX << (128 - u32::from(len));
        m >> (128 - u32::from(bits))
    }
}

impl<T> Family<T> {
    fn build(mut entries: Vec<(u128, u8, T)>, bits: u8) -> Self {
        // Stable sort keeps equal prefixes in input order; the last one wins (as in
        // `model::routes::next_hop`, which takes the last of equally good routes).
        entries.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        let mut levels: Vec<Level<T>> = Vec::new();
        for (key, len, val) in entries {
            let m = mask(len, bits);
            let key = key & m;
            match levels.last_mut() {
                Some(l) if l.len == len => {
                    if l.keys.last() == Some(&key) {
                        *l.vals.last_mut().expect("parallel arrays") = val;
                        continue;
                    }
                    l.keys.push(key);
                    l.vals.push(val);
                }
                _ => levels.push(Level {
                    len,
                    mask: m,
                    keys: vec![key],
                    vals: vec![val],
                }),
            }
        }
        Family { levels }
    }

    #[inline]
    fn lookup(&self, addr: u128) -> Option<(u8, &T)> {
        for l in &self.levels {
            let k = addr & l.mask;
            if let Ok(i) = l.keys.binary_search(&k) {
                return Some((l.len, &l.vals[i]));
            }
        }
        None
    }

    fn len(&self) -> usize {
        self.levels.iter().map(|l| l.keys.len()).sum()
    }
}

/// A longest-prefix-match table from prefixes to values of type `T`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lpm<T> {
    v4: Family<T>,
    v6: Family<T>,
}

impl<T> Default for Lpm<T> {
    fn default() -> Self {
        Lpm {
            v4: Family::default(),
            v6: Family::default(),
        }
    }
}

impl<T> Lpm<T> {
    /// Builds the table. Of several entries with the same prefix the last one is kept.
    pub fn new(entries: impl IntoIterator<Item = (IpNet, T)>) -> Self {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for (net, v) in entries {
            match net {
                IpNet::V4(n) => a.push((u128::from(u32::from(n.network())), n.prefix_len(), v)),
                IpNet::V6(n) => b.push((u128::from(n.network()), n.prefix_len(), v)),
            }
        }
        Lpm {
            v4: Family::build(a, 32),
            v6: Family::build(b, 128),
        }
    }

    /// The value of the longest prefix containing an IPv4 address (as a big-endian u32).
    #[inline]
    pub fn lookup_v4(&self, addr: u32) -> Option<&T> {
        self.v4.lookup(u128::from(addr)).map(|(_, v)| v)
    }

    /// The value of the longest prefix containing an IPv6 address (as a big-endian u128).
    #[inline]
    pub fn lookup_v6(&self, addr: u128) -> Option<&T> {
        self.v6.lookup(addr).map(|(_, v)| v)
    }

    /// Longest match for any address, with the matching prefix length.
    pub fn lookup(&self, addr: IpAddr) -> Option<(u8, &T)> {
        match addr {
            IpAddr::V4(a) => self.v4.lookup(u128::from(u32::from(a))),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        }
    }

    pub fn len(&self) -> usize {
        self.v4.len() + self.v6.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive<T>(entries: &[(IpNet, T)], a: IpAddr) -> Option<(u8, &T)> {
        let mut best: Option<(u8, &T)> = None;
        for (n, v) in entries {
            if n.contains(&a) && best.is_none_or(|(l, _)| n.prefix_len() > l) {
                best = Some((n.prefix_len(), v));
            }
        }
        best
    }

    #[test]
    fn basics() {
        let t = Lpm::new([
            ("10.0.0.0/16".parse().unwrap(), 1),
            ("10.0.1.0/24".parse().unwrap(), 2),
            ("0.0.0.0/0".parse().unwrap(), 3),
            ("fd00::/8".parse().unwrap(), 4),
        ]);
        assert_eq!(t.lookup("10.0.1.7".parse().unwrap()), Some((24, &2)));
        assert_eq!(t.lookup("10.0.2.7".parse().unwrap()), Some((16, &1)));
        assert_eq!(t.lookup("11.0.2.7".parse().unwrap()), Some((0, &3)));
        assert_eq!(t.lookup("fd12::1".parse().unwrap()), Some((8, &4)));
        assert_eq!(t.lookup("fe80::1".parse().unwrap()), None);
    }

    fn arb_v4_net() -> impl Strategy<Value = IpNet> {
        // A small universe so that prefixes nest and collide often.
        (0u32..8, 0u32..4, 0u8..=32).prop_map(|(a, b, len)| {
            let addr = std::net::Ipv4Addr::from((10 << 24) | (a << 16) | (b << 8) | 5);
            IpNet::V4(ipnet::Ipv4Net::new(addr, len).unwrap().trunc())
        })
    }

    proptest! {
        #[test]
        fn matches_a_linear_scan(entries in proptest::collection::vec((arb_v4_net(), 0u32..100), 0..24),
                                 probes in proptest::collection::vec((0u32..8, 0u32..4, 0u32..256), 1..32)) {
            // The last of equal prefixes wins in both.
            let mut dedup: Vec<(IpNet, u32)> = Vec::new();
            for (n, v) in &entries {
                dedup.retain(|(m, _)| m != n);
                dedup.push((*n, *v));
            }
            let t = Lpm::new(entries.clone());
            for (a, b, c) in probes {
                let addr = IpAddr::V4(std::net::Ipv4Addr::from((10 << 24) | (a << 16) | (b << 8) | c));
                prop_assert_eq!(t.lookup(addr), naive(&dedup, addr));
            }
        }
    }
}
