//! ARM resource ids: parsing, canonical keys and display.
//!
//! ARM matches ids case-insensitively but echoes the casing the client used when the resource
//! was created. We keep the original spelling in the stored document and index everything by a
//! lower-cased *key*.

use crate::error::{ArmError, ArmResult};

/// The resource kinds vnet serves, with their ARM type strings and URL segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    ResourceGroup,
    VirtualNetwork,
    Subnet,
    Peering,
    NetworkInterface,
    RouteTable,
    Route,
    PublicIp,
    VirtualNetworkGateway,
    LocalNetworkGateway,
    Connection,
    NetworkWatcher,
}

impl Kind {
    /// The ARM `type` string.
    pub fn type_name(self) -> &'static str {
        match self {
            Kind::ResourceGroup => "Microsoft.Resources/resourceGroups",
            Kind::VirtualNetwork => "Microsoft.Network/virtualNetworks",
            Kind::Subnet => "Microsoft.Network/virtualNetworks/subnets",
            Kind::Peering => "Microsoft.Network/virtualNetworks/virtualNetworkPeerings",
            Kind::NetworkInterface => "Microsoft.Network/networkInterfaces",
            Kind::RouteTable => "Microsoft.Network/routeTables",
            Kind::Route => "Microsoft.Network/routeTables/routes",
            Kind::PublicIp => "Microsoft.Network/publicIPAddresses",
            Kind::VirtualNetworkGateway => "Microsoft.Network/virtualNetworkGateways",
            Kind::LocalNetworkGateway => "Microsoft.Network/localNetworkGateways",
            Kind::Connection => "Microsoft.Network/connections",
            Kind::NetworkWatcher => "Microsoft.Network/networkWatchers",
        }
    }
    /// The URL segment naming the collection (as the spec spells it).
    pub fn segment(self) -> &'static str {
        match self {
            Kind::ResourceGroup => "resourceGroups",
            Kind::VirtualNetwork => "virtualNetworks",
            Kind::Subnet => "subnets",
            Kind::Peering => "virtualNetworkPeerings",
            Kind::NetworkInterface => "networkInterfaces",
            Kind::RouteTable => "routeTables",
            Kind::Route => "routes",
            Kind::PublicIp => "publicIPAddresses",
            Kind::VirtualNetworkGateway => "virtualNetworkGateways",
            Kind::LocalNetworkGateway => "localNetworkGateways",
            Kind::Connection => "connections",
            Kind::NetworkWatcher => "networkWatchers",
        }
    }
    /// Top-level Microsoft.Network kinds, by URL segment (case-insensitive).
    pub fn top_level(segment: &str) -> Option<Kind> {
        let s = segment.to_ascii_lowercase();
        [
            Kind::VirtualNetwork,
            Kind::NetworkInterface,
            Kind::RouteTable,
            Kind::PublicIp,
            Kind::VirtualNetworkGateway,
            Kind::LocalNetworkGateway,
            Kind::Connection,
            Kind::NetworkWatcher,
        ]
        .into_iter()
        .find(|k| k.segment().eq_ignore_ascii_case(&s))
    }
    /// Child kinds of a parent, by URL segment.
    pub fn child(parent: Kind, segment: &str) -> Option<Kind> {
        let c = match parent {
            Kind::VirtualNetwork => [Kind::Subnet, Kind::Peering].as_slice(),
            Kind::RouteTable => [Kind::Route].as_slice(),
            _ => [].as_slice(),
        };
        c.iter()
            .copied()
            .find(|k| k.segment().eq_ignore_ascii_case(segment))
    }
    pub fn parent(self) -> Option<Kind> {
        match self {
            Kind::Subnet | Kind::Peering => Some(Kind::VirtualNetwork),
            Kind::Route => Some(Kind::RouteTable),
            _ => None,
        }
    }
    /// Human name used in error messages.
    pub fn short(self) -> &'static str {
        self.type_name()
    }
}

/// A parsed resource id: subscription, resource group, kind, name and (for children) parent name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceId {
    pub subscription: String,
    pub resource_group: String,
    pub kind: Kind,
    /// For a child resource, the parent's name; otherwise the resource's own name.
    pub name: String,
    /// For a child resource: its name.
    pub child: Option<String>,
}

impl ResourceId {
    pub fn group(subscription: &str, rg: &str) -> Self {
        ResourceId {
            subscription: subscription.into(),
            resource_group: rg.into(),
            kind: Kind::ResourceGroup,
            name: rg.into(),
            child: None,
        }
    }
    pub fn top(subscription: &str, rg: &str, kind: Kind, name: &str) -> Self {
        ResourceId {
            subscription: subscription.into(),
            resource_group: rg.into(),
            kind,
            name: name.into(),
            child: None,
        }
    }
    pub fn child_of(parent: &ResourceId, kind: Kind, name: &str) -> Self {
        ResourceId {
            subscription: parent.subscription.clone(),
            resource_group: parent.resource_group.clone(),
            kind,
            name: parent.name.clone(),
            child: Some(name.into()),
        }
    }
    /// The resource's own name (the child's for children).
    pub fn leaf(&self) -> &str {
        self.child.as_deref().unwrap_or(&self.name)
    }
    /// The parent id of a child resource.
    pub fn parent(&self) -> Option<ResourceId> {
        let pk = self.kind.parent()?;
        Some(ResourceId::top(
            &self.subscription,
            &self.resource_group,
            pk,
            &self.name,
        ))
    }
    pub fn group_id(&self) -> ResourceId {
        ResourceId::group(&self.subscription, &self.resource_group)
    }
    /// The ARM id string, with the casing of its parts.
    pub fn to_id(&self) -> String {
        if self.kind == Kind::ResourceGroup {
            return format!(
                "/subscriptions/{}/resourceGroups/{}",
                self.subscription, self.resource_group
            );
        }
        let pk = self.kind.parent().unwrap_or(self.kind);
        let mut s = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/{}/{}",
            self.subscription,
            self.resource_group,
            pk.segment(),
            self.name
        );
        if let Some(c) = &self.child {
            s.push('/');
            s.push_str(self.kind.segment());
            s.push('/');
            s.push_str(c);
        }
        s
    }
    /// The case-insensitive index key.
    pub fn key(&self) -> String {
        self.to_id().to_ascii_lowercase()
    }

    /// Parses an ARM id of one of the kinds vnet serves.
    pub fn parse(id: &str) -> ArmResult<ResourceId> {
        let bad = || {
            ArmError::bad(
                "InvalidResourceReference",
                format!(
                    "Resource id '{id}' is invalid or references an unsupported resource type."
                ),
            )
        };
        let parts: Vec<&str> = id.split('/').collect();
        if parts.len() < 5 || !parts[0].is_empty() {
            return Err(bad());
        }
        if !parts[1].eq_ignore_ascii_case("subscriptions")
            || !parts[3].eq_ignore_ascii_case("resourceGroups")
        {
            return Err(bad());
        }
        let (sub, rg) = (parts[2], parts[4]);
        if sub.is_empty() || rg.is_empty() {
            return Err(bad());
        }
        if parts.len() == 5 {
            return Ok(ResourceId::group(sub, rg));
        }
        if parts.len() < 9
            || !parts[5].eq_ignore_ascii_case("providers")
            || !parts[6].eq_ignore_ascii_case("Microsoft.Network")
        {
            return Err(bad());
        }
        let kind = Kind::top_level(parts[7]).ok_or_else(bad)?;
        let name = parts[8];
        if name.is_empty() {
            return Err(bad());
        }
        match parts.len() {
            9 => Ok(ResourceId::top(sub, rg, kind, name)),
            11 => {
                let ck = Kind::child(kind, parts[9]).ok_or_else(bad)?;
                if parts[10].is_empty() {
                    return Err(bad());
                }
                Ok(ResourceId::child_of(
                    &ResourceId::top(sub, rg, kind, name),
                    ck,
                    parts[10],
                ))
            }
            _ => Err(bad()),
        }
    }
}

/// The key prefix under which all resources of a resource group live.
pub fn group_prefix(subscription: &str, rg: &str) -> String {
    format!("/subscriptions/{subscription}/resourcegroups/{rg}/").to_ascii_lowercase()
}

/// Checks a resource name against ARM's rules for Microsoft.Network names: 1–80 characters,
/// word characters, '.', '-' and '_'; starts with a letter or digit; ends with a letter, digit
/// or '_'. Resource group names allow '(' and ')' and up to 90 characters.
pub fn check_name(kind: Kind, name: &str) -> ArmResult<()> {
    let max = if kind == Kind::ResourceGroup { 90 } else { 80 };
    let ok_char = |c: char| {
        c.is_ascii_alphanumeric()
            || c == '_'
            || c == '-'
            || c == '.'
            || (kind == Kind::ResourceGroup && (c == '(' || c == ')'))
    };
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || (kind == Kind::ResourceGroup && c == '_'));
    let last_ok = name.chars().last().is_some_and(|c| {
        c.is_ascii_alphanumeric() || c == '_' || (kind == Kind::ResourceGroup && c == ')')
    });
    if name.is_empty() || name.len() > max || !name.chars().all(ok_char) || !first_ok || !last_ok {
        let code = if kind == Kind::ResourceGroup {
            "InvalidResourceGroupName"
        } else {
            "InvalidResourceName"
        };
        return Err(ArmError::bad(
            code,
            format!(
                "Resource name {name} is invalid. The name can be up to {max} characters long. It must begin with a word character, and it must end with a word character or with '_'. The name may contain word characters or '.', '-', '_'."
            ),
        ));
    }
    Ok(())
}

/// Subscription ids: vnet accepts any id made of letters, digits and '-' (Azure's are GUIDs;
/// Azure's own examples use `subid`).
pub fn check_subscription(sub: &str) -> ArmResult<()> {
    if sub.is_empty()
        || sub.len() > 64
        || !sub.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(ArmError::new(
            400,
            "InvalidSubscriptionId",
            format!("The provided subscription identifier '{sub}' is malformed or invalid."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_round_trip_and_case_insensitive_key() {
        let id = "/subscriptions/s1/resourceGroups/RG/providers/Microsoft.Network/virtualNetworks/V1/subnets/Sn";
        let r = ResourceId::parse(id).unwrap();
        assert_eq!(r.kind, Kind::Subnet);
        assert_eq!(r.to_id(), id);
        let lower = ResourceId::parse(&id.to_ascii_lowercase()).unwrap();
        assert_eq!(lower.key(), r.key());
        assert_eq!(r.parent().unwrap().kind, Kind::VirtualNetwork);
    }

    #[test]
    fn parse_rejects_foreign_and_malformed() {
        for bad in [
            "",
            "subscriptions/s/resourceGroups/r",
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/vm",
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/",
            "/subscriptions/s/resourceGroups/r/providers/Microsoft.Network/virtualNetworks/v/foo/x",
        ] {
            assert!(ResourceId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names() {
        assert!(check_name(Kind::VirtualNetwork, "hub-vnet_1.a").is_ok());
        assert!(check_name(Kind::VirtualNetwork, "x_").is_ok());
        for bad in ["", "-a", "a-", "a b", "a/b", &"a".repeat(81)] {
            assert!(check_name(Kind::VirtualNetwork, bad).is_err(), "{bad}");
        }
        assert!(check_name(Kind::ResourceGroup, "rg(1)").is_ok());
    }
}
