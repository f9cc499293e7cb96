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

/// The sort key of a prefix: family, first address, widest first. CIDR blocks are either
/// nested or disjoint, so in this order every block that contains another comes before it and
/// everything in between lies inside it too; that is what makes the neighbour and stack sweeps
/// below exact.
fn sort_key(n: &IpNet) -> (bool, u128, u8) {
    (n.network().is_ipv6(), to_u128(n.network()), n.prefix_len())
}

fn last(n: &IpNet) -> u128 {
    to_u128(n.broadcast())
}

/// Indices `(i, j)`, `i < j`, of two overlapping prefixes of `list`, or None: O(n log n).
/// If any two blocks overlap, the wider one is followed in sort order by a block that starts
/// inside it, so checking neighbours is enough.
pub fn find_overlap(list: &[IpNet]) -> Option<(usize, usize)> {
    let mut idx: Vec<usize> = (0..list.len()).collect();
    idx.sort_by_key(|&i| sort_key(&list[i]));
    idx.windows(2)
        .find(|w| overlaps(&list[w[0]], &list[w[1]]))
        .map(|w| (w[0].min(w[1]), w[0].max(w[1])))
}

/// Every pair `(i, j)` with `a[i]` and `b[j]` overlapping, in O((n + m) log(n + m) + pairs).
/// Later duplicates within one list are skipped (they overlap exactly what the first copy
/// does). A sweep in sort order keeps the chain of blocks that contain the current one; with
/// duplicates gone the chain is at most two blocks per prefix length deep.
fn overlapping_pairs(a: &[IpNet], b: &[IpNet]) -> Vec<(usize, usize)> {
    let mut items: Vec<(bool, usize, &IpNet)> = Vec::with_capacity(a.len() + b.len());
    for (side, list) in [(false, a), (true, b)] {
        let mut idx: Vec<usize> = (0..list.len()).collect();
        idx.sort_by_key(|&i| (sort_key(&list[i]), i));
        idx.dedup_by_key(|i| sort_key(&list[*i]));
        items.extend(idx.into_iter().map(|i| (side, i, &list[i])));
    }
    items.sort_by_key(|(side, i, n)| (sort_key(n), *side, *i));
    let mut chain: Vec<(bool, usize, &IpNet)> = Vec::new();
    let mut pairs = Vec::new();
    for it in items {
        let (fam, start, _) = sort_key(it.2);
        while let Some(top) = chain.last() {
            if top.2.network().is_ipv6() != fam || last(top.2) < start {
                chain.pop();
            } else {
                break;
            }
        }
        for c in &chain {
            if c.0 != it.0 {
                pairs.push(if it.0 { (c.1, it.1) } else { (it.1, c.1) });
            }
        }
        chain.push(it);
    }
    pairs
}

/// Whether any prefix of `a` overlaps any prefix of `b`.
pub fn any_overlap(a: &[IpNet], b: &[IpNet]) -> bool {
    !overlapping_pairs(a, b).is_empty()
}

/// All prefixes of `a` that overlap any prefix of `b`, formatted, deduplicated, in order: for
/// each prefix of `a` in turn, the overlaps with `b` in `b`'s order, each reported by its more
/// specific prefix (as Azure does).
pub fn overlapping(a: &[IpNet], b: &[IpNet]) -> Vec<String> {
    let mut pairs = overlapping_pairs(a, b);
    pairs.sort_unstable();
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (i, j) in pairs {
        let (x, y) = (&a[i], &b[j]);
        let s = if x.prefix_len() >= y.prefix_len() {
            x
        } else {
            y
        }
        .to_string();
        if seen.insert(s.clone()) {
            out.push(s);
        }
    }
    out
}

/// A list of non-overlapping prefixes (a validated address space), sorted so that the one
/// block that can contain a given prefix is found by binary search.
pub struct Disjoint {
    sorted: Vec<IpNet>,
}

impl Disjoint {
    /// `list` must not overlap itself (check with [`find_overlap`] first).
    pub fn new(list: &[IpNet]) -> Self {
        let mut sorted = list.to_vec();
        sorted.sort_by_key(sort_key);
        Disjoint { sorted }
    }
    /// Whether some block of the list contains `p`: the only candidate is the last block that
    /// starts at or before `p` (the blocks are disjoint).
    pub fn contains(&self, p: &IpNet) -> bool {
        let k = sort_key(p);
        let n = self
            .sorted
            .partition_point(|x| (sort_key(x).0, sort_key(x).1) <= (k.0, k.1));
        n > 0 && self.sorted[n - 1].contains(p)
    }
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
    use proptest::prelude::*;

    /// The all-pairs definitions the sorted sweeps replace.
    fn overlapping_naive(a: &[IpNet], b: &[IpNet]) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for x in a {
            for y in b {
                if overlaps(x, y) {
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

    fn any_pair_naive(l: &[IpNet]) -> bool {
        (0..l.len()).any(|i| (i + 1..l.len()).any(|j| overlaps(&l[i], &l[j])))
    }

    /// Random prefixes crowded into a small range (10.0.0.0/20 and fd00::/120, lengths 16 to
    /// 28 / 116 to 124) so that nesting, duplicates and neighbours are all frequent.
    fn arb_prefix() -> impl Strategy<Value = IpNet> {
        prop_oneof![
            4 => (0u32..4096, 16u8..29).prop_map(|(a, l)| {
                IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 | a), l).unwrap().trunc())
            }),
            1 => (0u128..4096, 116u8..125).prop_map(|(a, l)| {
                let base = u128::from("fd00::".parse::<Ipv6Addr>().unwrap());
                IpNet::V6(Ipv6Net::new(Ipv6Addr::from(base | a), l).unwrap().trunc())
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The sorted sweep reports exactly what the all-pairs loop reported, in its order.
        #[test]
        fn sorted_overlap_equals_all_pairs(
            a in proptest::collection::vec(arb_prefix(), 0..24),
            b in proptest::collection::vec(arb_prefix(), 0..24),
        ) {
            prop_assert_eq!(overlapping(&a, &b), overlapping_naive(&a, &b));
            prop_assert_eq!(any_overlap(&a, &b), !overlapping_naive(&a, &b).is_empty());
            let found = find_overlap(&a);
            prop_assert_eq!(found.is_some(), any_pair_naive(&a));
            if let Some((i, j)) = found {
                prop_assert!(i < j && overlaps(&a[i], &a[j]));
            }
        }

        /// Binary-search containment in a disjoint space equals the linear search.
        #[test]
        fn disjoint_contains_equals_linear(
            a in proptest::collection::vec(arb_prefix(), 0..24),
            probes in proptest::collection::vec(arb_prefix(), 0..24),
        ) {
            // Keep a disjoint subset of `a`, as a validated address space is.
            let mut space: Vec<IpNet> = Vec::new();
            for p in a {
                if !space.iter().any(|s| overlaps(s, &p)) {
                    space.push(p);
                }
            }
            let d = Disjoint::new(&space);
            for p in &probes {
                prop_assert_eq!(d.contains(p), space.iter().any(|s| s.contains(p)), "{}", p);
            }
        }
    }

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
        assert_eq!(
            overlapping(&b, &a),
            vec!["10.1.1.0/24", "10.1.2.0/24"],
            "reported by the more specific prefix either way round"
        );
        assert!(overlapping(&[v4("10.0.0.0/8")], &[v6("fd00::/8")]).is_empty());
        assert_eq!(
            find_overlap(&[v4("10.2.0.0/16"), v4("10.1.0.0/16"), v4("10.1.2.0/24")]),
            Some((1, 2))
        );
        assert_eq!(find_overlap(&[v4("10.2.0.0/16"), v4("10.1.0.0/16")]), None);
        let d = Disjoint::new(&[v4("10.2.0.0/16"), v4("10.1.0.0/16"), v6("fd00::/48")]);
        assert!(d.contains(&v4("10.1.7.0/24")));
        assert!(d.contains(&v6("fd00:0:0:1::/64")));
        assert!(!d.contains(&v4("10.3.0.0/24")));
        assert!(!d.contains(&v4("10.0.0.0/8")), "wider than any block");
        assert!(forbidden_in_vnet(&v4("127.0.0.0/16")).is_some());
        assert!(forbidden_in_vnet(&v4("10.0.0.0/8")).is_none());
    }
}
