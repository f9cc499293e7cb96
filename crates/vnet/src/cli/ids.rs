//! Resource ids and request paths.
//!
//! Like `az`, every option that points at another resource (`--remote-vnet`, `--subnet`,
//! `--route-table`, ...) takes either a bare name, resolved in the command's subscription and
//! resource group, or a full id starting with `/`, used as given (so cross-group and
//! cross-subscription references work).

use super::error::CliError;

/// The Microsoft.Network api-version every network request carries.
pub const NETWORK_API_VERSION: &str = "2025-07-01";
/// The Microsoft.Resources api-version for resource groups.
pub const RESOURCES_API_VERSION: &str = "2021-04-01";

/// Collection segments of the Microsoft.Network types the CLI manages, spelled as in the spec.
pub mod kind {
    pub const VIRTUAL_NETWORKS: &str = "virtualNetworks";
    pub const SUBNETS: &str = "subnets";
    pub const PEERINGS: &str = "virtualNetworkPeerings";
    pub const NETWORK_INTERFACES: &str = "networkInterfaces";
    pub const ROUTE_TABLES: &str = "routeTables";
    pub const ROUTES: &str = "routes";
    pub const PUBLIC_IPS: &str = "publicIPAddresses";
    pub const VNET_GATEWAYS: &str = "virtualNetworkGateways";
    pub const LOCAL_GATEWAYS: &str = "localNetworkGateways";
    pub const CONNECTIONS: &str = "connections";
    pub const NETWORK_WATCHERS: &str = "networkWatchers";
}

/// The subscription and resource group a command works in.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub subscription: &'a str,
    pub resource_group: &'a str,
}

impl<'a> Scope<'a> {
    pub fn new(subscription: &'a str, resource_group: &'a str) -> Self {
        Scope {
            subscription,
            resource_group,
        }
    }

    /// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Network/{kind}/{name}`.
    pub fn id(&self, kind: &str, name: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/{kind}/{name}",
            self.subscription, self.resource_group
        )
    }

    /// A name resolved in this scope, or an id (anything starting with `/`) kept as it is.
    pub fn resolve(&self, kind: &str, name_or_id: &str) -> String {
        if is_id(name_or_id) {
            name_or_id.trim_end_matches('/').to_owned()
        } else {
            self.id(kind, name_or_id)
        }
    }

    /// The collection URL of a top-level type in this resource group.
    pub fn list_url(&self, kind: &str) -> String {
        network_url(&format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/{kind}",
            self.subscription, self.resource_group
        ))
    }

    /// A subnet given as an id, or as a name with its VNet's name (as `az`'s `--subnet` with
    /// `--vnet-name`).
    pub fn resolve_subnet(&self, vnet: Option<&str>, subnet: &str) -> Result<String, CliError> {
        if is_id(subnet) {
            return Ok(subnet.trim_end_matches('/').to_owned());
        }
        let vnet = vnet.ok_or_else(|| {
            CliError::validation(format!(
                "--subnet {subnet} is a name, so --vnet-name is needed too (or give the subnet's full id)"
            ))
        })?;
        Ok(child(
            &self.resolve(kind::VIRTUAL_NETWORKS, vnet),
            kind::SUBNETS,
            subnet,
        ))
    }
}

/// Whether an option value is a full resource id rather than a name.
pub fn is_id(name_or_id: &str) -> bool {
    name_or_id.starts_with('/')
}

/// A child resource's id: `{parent}/{kind}/{name}`.
pub fn child(parent_id: &str, kind: &str, name: &str) -> String {
    format!("{parent_id}/{kind}/{name}")
}

/// A child collection's path: `{parent}/{kind}`.
pub fn collection(parent_id: &str, kind: &str) -> String {
    format!("{parent_id}/{kind}")
}

/// A Microsoft.Network URL for an id (or any path under one).
pub fn network_url(path: &str) -> String {
    format!("{path}?api-version={NETWORK_API_VERSION}")
}

/// The subscription-wide collection of a type (ARM's `ListAll`).
pub fn list_all_url(subscription: &str, kind: &str) -> String {
    network_url(&format!(
        "/subscriptions/{subscription}/providers/Microsoft.Network/{kind}"
    ))
}

/// A resource group's URL (Microsoft.Resources spells the segment in lower case).
pub fn group_url(subscription: &str, resource_group: &str) -> String {
    format!("/subscriptions/{subscription}/resourcegroups/{resource_group}?api-version={RESOURCES_API_VERSION}")
}

/// All resource groups of a subscription.
pub fn groups_url(subscription: &str) -> String {
    format!("/subscriptions/{subscription}/resourcegroups?api-version={RESOURCES_API_VERSION}")
}

/// The resource group named in an id, matched case-insensitively as ARM does.
pub fn resource_group_of(id: &str) -> Option<&str> {
    let mut parts = id.split('/');
    while let Some(part) = parts.next() {
        if part.eq_ignore_ascii_case("resourceGroups") {
            return parts.next().filter(|s| !s.is_empty());
        }
    }
    None
}

/// The last segment of an id: the resource's own name.
pub fn name_of(id: &str) -> &str {
    id.trim_end_matches('/').rsplit('/').next().unwrap_or(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "00000000-0000-0000-0000-000000000000";

    #[test]
    fn names_resolve_in_scope() {
        let scope = Scope::new(S, "rg1");
        assert_eq!(
            scope.resolve(kind::VIRTUAL_NETWORKS, "hub"),
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/hub"
        );
    }

    #[test]
    fn ids_are_kept() {
        let scope = Scope::new(S, "rg1");
        let id = "/subscriptions/other/resourceGroups/rg9/providers/Microsoft.Network/virtualNetworks/far";
        assert_eq!(scope.resolve(kind::VIRTUAL_NETWORKS, id), id);
        assert_eq!(scope.resolve(kind::VIRTUAL_NETWORKS, &format!("{id}/")), id);
    }

    #[test]
    fn subnet_by_name_needs_the_vnet() {
        let scope = Scope::new(S, "rg1");
        assert_eq!(
            scope.resolve_subnet(Some("hub"), "default").unwrap(),
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/hub/subnets/default"
        );
        let err = scope.resolve_subnet(None, "default").unwrap_err();
        assert_eq!(err.code, "ValidationError");
        let id = "/subscriptions/x/resourceGroups/y/providers/Microsoft.Network/virtualNetworks/v/subnets/s";
        assert_eq!(scope.resolve_subnet(None, id).unwrap(), id);
    }

    #[test]
    fn urls_carry_api_versions() {
        assert_eq!(
            group_url(S, "rg1"),
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg1?api-version=2021-04-01"
        );
        assert_eq!(
            list_all_url("s", kind::VIRTUAL_NETWORKS),
            "/subscriptions/s/providers/Microsoft.Network/virtualNetworks?api-version=2025-07-01"
        );
        assert_eq!(
            Scope::new("s", "rg").list_url(kind::CONNECTIONS),
            "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/connections?api-version=2025-07-01"
        );
    }

    #[test]
    fn group_and_name_from_ids() {
        let id = "/subscriptions/s/resourcegroups/RG1/providers/Microsoft.Network/virtualNetworks/hub/subnets/a";
        assert_eq!(resource_group_of(id), Some("RG1"));
        assert_eq!(name_of(id), "a");
        assert_eq!(resource_group_of("/subscriptions/s"), None);
    }
}
