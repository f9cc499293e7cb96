//! Building desired states in memory with the model's own write rules: for tests of the
//! planner and the forwarder (and anyone else who needs a topology without a server).

use crate::ops::{self, PutOptions};
use crate::{ArmResult, Change, Config, Ctx, ResourceId, State, Tx};
use serde_json::{json, Value};

pub const SUB: &str = "00000000-0000-0000-0000-0000000000dd";
pub const RG: &str = "rg";

/// A desired state built through the model's writes (so every Azure rule applies).
pub struct World {
    pub st: State,
    config: Config,
    n: u128,
}

impl Default for World {
    fn default() -> Self {
        Self::new()
    }
}

pub fn rg_path() -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{RG}")
}
pub fn vnet_id(v: &str) -> String {
    format!(
        "{}/providers/Microsoft.Network/virtualNetworks/{v}",
        rg_path()
    )
}
pub fn subnet_id(v: &str, s: &str) -> String {
    format!("{}/subnets/{s}", vnet_id(v))
}
pub fn nic_id(n: &str) -> String {
    format!(
        "{}/providers/Microsoft.Network/networkInterfaces/{n}",
        rg_path()
    )
}
pub fn table_id(t: &str) -> String {
    format!("{}/providers/Microsoft.Network/routeTables/{t}", rg_path())
}
/// The lower-cased key of an id.
pub fn key(id: &str) -> String {
    id.to_ascii_lowercase()
}

impl World {
    pub fn new() -> World {
        Self::with_config(Config::default())
    }

    /// A world whose writes see `config` (public IP pools).
    pub fn with_config(config: Config) -> World {
        let mut w = World {
            st: State::new(),
            config,
            n: 1,
        };
        w.put(&rg_path(), json!({"location": "westeurope"}))
            .expect("resource group");
        w
    }

    /// Runs `f` in a transaction over the current state and returns what it would change,
    /// without applying it.
    pub fn stage(
        &self,
        f: impl FnOnce(&mut Tx, &mut Ctx) -> ArmResult<()>,
    ) -> ArmResult<Vec<Change>> {
        let mut tx = Tx::new(&self.st);
        let mut n = self.n;
        let mut rng = || {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            n
        };
        let mut ctx = Ctx {
            config: &self.config,
            now: "2026-01-01T00:00:00Z".into(),
            rng: &mut rng,
        };
        f(&mut tx, &mut ctx)?;
        Ok(tx.into_changes())
    }

    fn write(&mut self, f: impl FnOnce(&mut Tx, &mut Ctx) -> ArmResult<()>) -> ArmResult<()> {
        let changes = self.stage(f)?;
        self.n += 1;
        self.st.apply(&changes);
        Ok(())
    }

    pub fn put(&mut self, id: &str, body: Value) -> ArmResult<()> {
        let rid = ResourceId::parse(id)?;
        self.write(|tx, ctx| ops::put(tx, ctx, &rid, &body, &PutOptions::default()).map(|_| ()))
    }

    pub fn delete(&mut self, id: &str) -> ArmResult<()> {
        let rid = ResourceId::parse(id)?;
        self.write(|tx, ctx| ops::delete(tx, ctx, &rid).map(|_| ()))
    }

    pub fn vnet(&mut self, name: &str, space: &[&str]) -> ArmResult<()> {
        self.put(&vnet_id(name), json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": space}}}))
    }

    pub fn subnet(
        &mut self,
        vnet: &str,
        name: &str,
        prefixes: &[&str],
        route_table: Option<&str>,
    ) -> ArmResult<()> {
        let mut p = json!({"addressPrefixes": prefixes});
        if let Some(t) = route_table {
            p["routeTable"] = json!({"id": table_id(t)});
        }
        self.put(&subnet_id(vnet, name), json!({"properties": p}))
    }

    /// A NIC with one IPv4 configuration (static when `ip` is given) and optionally an IPv6 one.
    pub fn nic(
        &mut self,
        name: &str,
        vnet: &str,
        subnet: &str,
        ip: Option<&str>,
        ip6: Option<&str>,
        forwarding: bool,
    ) -> ArmResult<()> {
        let mut c4 = json!({"subnet": {"id": subnet_id(vnet, subnet)}});
        if let Some(ip) = ip {
            c4["privateIPAddress"] = json!(ip);
            c4["privateIPAllocationMethod"] = json!("Static");
        }
        let mut cfgs = vec![json!({"name": "ipconfig1", "properties": c4})];
        if let Some(ip6) = ip6 {
            cfgs.push(json!({"name": "ipconfig6", "properties": {"subnet": {"id": subnet_id(vnet, subnet)},
                "privateIPAddressVersion": "IPv6", "privateIPAddress": ip6, "privateIPAllocationMethod": "Static"}}));
        }
        self.put(
            &nic_id(name),
            json!({"location": "westeurope", "properties": {"enableIPForwarding": forwarding, "ipConfigurations": cfgs}}),
        )
    }

    /// The link `a → b` (named `a-b`).
    pub fn link(&mut self, a: &str, b: &str, access: bool, forwarded: bool) -> ArmResult<()> {
        self.put(
            &format!("{}/virtualNetworkPeerings/{a}-{b}", vnet_id(a)),
            json!({"properties": {"remoteVirtualNetwork": {"id": vnet_id(b)}, "allowVirtualNetworkAccess": access, "allowForwardedTraffic": forwarded}}),
        )
    }

    pub fn unlink(&mut self, a: &str, b: &str) -> ArmResult<()> {
        self.delete(&format!("{}/virtualNetworkPeerings/{a}-{b}", vnet_id(a)))
    }

    pub fn route_table(&mut self, name: &str) -> ArmResult<()> {
        self.put(
            &table_id(name),
            json!({"location": "westeurope", "properties": {}}),
        )
    }

    pub fn route(
        &mut self,
        table: &str,
        name: &str,
        prefix: &str,
        hop: &str,
        ip: Option<&str>,
    ) -> ArmResult<()> {
        let mut p = json!({"addressPrefix": prefix, "nextHopType": hop});
        if let Some(ip) = ip {
            p["nextHopIpAddress"] = json!(ip);
        }
        self.put(
            &format!("{}/routes/{name}", table_id(table)),
            json!({"properties": p}),
        )
    }
}

/// a (10.1/16) ⟷ b (10.2/16), c (10.3/16) peered with b only, d overlapping a and unpeered;
/// every VNet with subnets s1 (IPv4 + IPv6) and s2, a NIC `<vnet>1` at .1.4 (and ::4) and
/// `<vnet>2` at .2.4. The forwarder's tests and its fuzz target start from it.
pub fn chain() -> World {
    let mut w = World::new();
    for (v, o) in [("a", 1), ("b", 2), ("c", 3), ("d", 1)] {
        let sp = format!("10.{o}.0.0/16");
        w.vnet(v, &[sp.as_str(), &format!("fd00:{o}::/48")])
            .expect("vnet");
        let s1 = format!("10.{o}.1.0/24");
        w.subnet(v, "s1", &[s1.as_str(), &format!("fd00:{o}:0:1::/64")], None)
            .expect("subnet");
        let s2 = format!("10.{o}.2.0/24");
        w.subnet(v, "s2", &[s2.as_str()], None).expect("subnet");
        w.nic(
            &format!("{v}1"),
            v,
            "s1",
            Some(&format!("10.{o}.1.4")),
            Some(&format!("fd00:{o}:0:1::4")),
            false,
        )
        .expect("nic");
        w.nic(
            &format!("{v}2"),
            v,
            "s2",
            Some(&format!("10.{o}.2.4")),
            None,
            false,
        )
        .expect("nic");
    }
    for (a, b) in [("a", "b"), ("b", "a"), ("b", "c"), ("c", "b")] {
        w.link(a, b, true, false).expect("peering");
    }
    w
}
