//! Azure's documented limits and the bounds vnet adds where Azure documents none, in one place.
//!
//! Each limit is checked where the write that would cross it is staged, with the count the
//! transaction sees, so a refused write stages nothing that survives (the whole transaction is
//! dropped). The bounds also cap what one request can make the server do: every check in the
//! write path is at most O(n log n) in the sizes bounded here.

use crate::error::{ArmError, ArmResult};
use serde_json::Value;

/// Subnets per virtual network (Azure: 3,000).
pub const SUBNETS_PER_VNET: usize = 3_000;
/// Peerings per virtual network (Azure: 500; 1,000 only through Virtual Network Manager).
pub const PEERINGS_PER_VNET: usize = 500;
/// Routes per route table (Azure: 400).
pub const ROUTES_PER_TABLE: usize = 400;
/// DNS servers per virtual network (Azure: 20); vnet applies the same bound to a NIC's list.
pub const DNS_SERVERS: usize = 20;
/// Private IP addresses (one per IP configuration) per network interface (Azure: 256).
pub const IP_CONFIGS_PER_NIC: usize = 256;
/// Virtual networks per subscription and region (Azure: 1,000).
pub const VNETS_PER_REGION: usize = 1_000;
/// User-defined route tables per subscription and region (Azure: 200).
pub const ROUTE_TABLES_PER_REGION: usize = 200;
/// Network interfaces per subscription and region (Azure: 65,536).
pub const NICS_PER_REGION: usize = 65_536;
/// Point-to-site root certificates per gateway (Azure: 20).
pub const P2S_ROOT_CERTS: usize = 20;
/// Point-to-site revoked client certificates per gateway (Azure: 300).
pub const P2S_REVOKED_CERTS: usize = 300;

/// Prefixes in one address-prefix list that is not a subnet's: a VNet's address space, a local
/// network gateway's address space, a gateway's custom routes or client pool. Azure documents
/// no limit. 1,000 is far above any real design (a VNet of 3,000 subnets needs one prefix) and
/// keeps the overlap checks between peered spaces small.
pub const PREFIXES_PER_SPACE: usize = 1_000;
/// Prefixes of one subnet (`addressPrefixes`). Azure documents no limit; with 3,000 subnets
/// this bounds one VNet PUT to 300,000 prefixes, about what fits in the 4 MiB body limit.
pub const PREFIXES_PER_SUBNET: usize = 100;

/// A per-subscription-per-region count reached, in the shape of Azure's own
/// `PublicIPCountLimitReached` ("Cannot create more than N public IP addresses for this
/// subscription in this region.").
pub fn region_limit(code: &str, limit: usize, what: &str, location: &str) -> ArmError {
    ArmError::bad(
        code,
        format!("Cannot create more than {limit} {what} for this subscription in this region ({location})."),
    )
}

/// A per-resource count over its limit (`owner` names the resource, `what` the items).
pub fn count_limit(code: &str, owner: &str, what: &str, count: usize, limit: usize) -> ArmError {
    ArmError::bad(
        code,
        format!("{owner} would have {count} {what}; at most {limit} are allowed."),
    )
}

/// The DNS servers a VNet (`dhcpOptions`) or a NIC (`dnsSettings`) lists at
/// `props.<settings>.dnsServers`, against Azure's limit.
pub fn check_dns_servers(props: &Value, settings: &str, owner: &str) -> ArmResult<()> {
    let dns = props
        .get(settings)
        .and_then(|d| d.get("dnsServers"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    if dns > DNS_SERVERS {
        return Err(count_limit(
            "DnsServerCountLimitReached",
            owner,
            "DNS servers",
            dns,
            DNS_SERVERS,
        ));
    }
    Ok(())
}

/// A prefix list longer than its bound (`what` names the field).
pub fn prefix_limit(what: &str, owner: &str, count: usize, limit: usize) -> ArmError {
    count_limit(
        "AddressPrefixCountLimitReached",
        owner,
        &format!("address prefixes in {what}"),
        count,
        limit,
    )
}
