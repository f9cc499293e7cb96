//! A vnet API server on a loopback port, in-process, with a blocking HTTP client.
#![allow(dead_code)]

use api::routes::AppOptions;
use serde_json::{json, Value};
use std::time::Duration;

pub const API: &str = "2025-07-01";
pub const SUB: &str = "00000000-0000-0000-0000-0000000000aa";

pub struct Server {
    pub base: String,
    pub client: reqwest::blocking::Client,
    pub _rt: tokio::runtime::Runtime,
    pub dir: tempfile::TempDir,
    pub app: std::sync::Arc<api::routes::App>,
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(AppOptions {
            provision_delay: Duration::from_millis(100),
            ..Default::default()
        })
    }

    pub fn start_with(opts: AppOptions) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = model::Config {
            public_ip_pools: vec!["198.18.0.0/24".parse().unwrap()],
        };
        let app = api::open_app(dir.path(), config, opts).unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let router = api::router(app.clone());
        rt.spawn(async move { axum::serve(listener, router).await.unwrap() });
        Server {
            base: format!("http://{addr}"),
            client: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            _rt: rt,
            dir,
            app,
        }
    }

    pub fn url(&self, path: &str) -> String {
        let sep = if path.contains('?') { '&' } else { '?' };
        format!("{}{path}{sep}api-version={API}", self.base)
    }

    fn send(&self, rb: reqwest::blocking::RequestBuilder) -> (u16, Value) {
        let r = rb.send().unwrap();
        let s = r.status().as_u16();
        let t = r.text().unwrap();
        (
            s,
            if t.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&t).unwrap_or(Value::String(t))
            },
        )
    }

    pub fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.client.put(self.url(path)).json(&body))
    }
    pub fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(self.url(path)))
    }
    pub fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.client.delete(self.url(path)))
    }
    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).json(&body))
    }
    pub fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.client.patch(self.url(path)).json(&body))
    }

    /// PUT that must succeed; returns the body.
    pub fn ok_put(&self, path: &str, body: Value) -> Value {
        let (s, b) = self.put(path, body);
        assert!(s == 200 || s == 201, "PUT {path} -> {s} {b}");
        b
    }
    /// GET that must succeed.
    pub fn ok_get(&self, path: &str) -> Value {
        let (s, b) = self.get(path);
        assert_eq!(s, 200, "GET {path} -> {b}");
        b
    }
    /// A refused request: asserts the status and error code, returns the message.
    pub fn refused(&self, r: (u16, Value), status: u16, code: &str) -> String {
        assert_eq!(r.0, status, "expected {status} {code}, got {} {}", r.0, r.1);
        assert_eq!(r.1["error"]["code"], code, "{}", r.1);
        r.1["error"]["message"].as_str().unwrap().to_string()
    }

    /// Waits until the resource's provisioningState is Succeeded.
    pub fn wait_succeeded(&self, path: &str) -> Value {
        for _ in 0..100 {
            let b = self.ok_get(path);
            if b["properties"]["provisioningState"] == "Succeeded" {
                return b;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{path} never reached Succeeded");
    }

    // ----- scenario helpers -----
    /// Waits until `path` answers 404 (an asynchronous delete finished).
    pub fn wait_gone(&self, path: &str) {
        for _ in 0..200 {
            if self.get(path).0 == 404 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{path} still exists after 10 s");
    }
    pub fn rg(&self, rg: &str) {
        self.ok_put(
            &format!("/subscriptions/{SUB}/resourcegroups/{rg}"),
            json!({"location": "westeurope"}),
        );
    }
    pub fn vnet(&self, rg: &str, name: &str, prefixes: &[&str]) -> Value {
        self.ok_put(&net(rg, &format!("virtualNetworks/{name}")), json!({"location": "westeurope", "properties": {"addressSpace": {"addressPrefixes": prefixes}}}))
    }
    pub fn subnet(&self, rg: &str, vnet: &str, name: &str, prefix: &str) -> Value {
        self.ok_put(
            &net(rg, &format!("virtualNetworks/{vnet}/subnets/{name}")),
            json!({"properties": {"addressPrefix": prefix}}),
        )
    }
    pub fn peer(&self, rg: &str, from: &str, to: &str, props: Value) -> (u16, Value) {
        let mut p =
            json!({"remoteVirtualNetwork": {"id": id(rg, &format!("virtualNetworks/{to}"))}});
        for (k, v) in props.as_object().unwrap() {
            p[k] = v.clone();
        }
        self.put(
            &net(
                rg,
                &format!("virtualNetworks/{from}/virtualNetworkPeerings/{from}-to-{to}"),
            ),
            json!({"properties": p}),
        )
    }
    pub fn peering_state(&self, rg: &str, from: &str, to: &str) -> String {
        self.ok_get(&net(
            rg,
            &format!("virtualNetworks/{from}/virtualNetworkPeerings/{from}-to-{to}"),
        ))["properties"]["peeringState"]
            .as_str()
            .unwrap()
            .to_string()
    }
    pub fn nic(
        &self,
        rg: &str,
        name: &str,
        vnet: &str,
        subnet: &str,
        ip: Option<&str>,
    ) -> (u16, Value) {
        let mut c =
            json!({"subnet": {"id": id(rg, &format!("virtualNetworks/{vnet}/subnets/{subnet}"))}});
        if let Some(ip) = ip {
            c["privateIPAddress"] = json!(ip);
            c["privateIPAllocationMethod"] = json!("Static");
        }
        self.put(&net(rg, &format!("networkInterfaces/{name}")), json!({"location": "westeurope", "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": c}]}}))
    }
    pub fn routes(&self, rg: &str, nic: &str) -> Vec<(String, String, String, String)> {
        let (s, b) = self.post(
            &net(rg, &format!("networkInterfaces/{nic}/effectiveRouteTable")),
            json!({}),
        );
        assert_eq!(s, 200, "{b}");
        b["value"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["addressPrefix"][0].as_str().unwrap().to_string(),
                    r["nextHopType"].as_str().unwrap().to_string(),
                    r["source"].as_str().unwrap().to_string(),
                    r["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
    /// A VPN gateway in `vnet` (which needs a GatewaySubnet), provisioned.
    pub fn gateway(&self, rg: &str, vnet: &str, name: &str, extra: Value) -> Value {
        self.ok_put(
            &net(rg, &format!("publicIPAddresses/{name}-pip")),
            json!({"location": "westeurope", "sku": {"name": "Standard"}}),
        );
        let mut props = json!({
            "gatewayType": "Vpn", "vpnType": "RouteBased", "sku": {"name": "VpnGw1", "tier": "VpnGw1"},
            "ipConfigurations": [{"name": "default", "properties": {
                "subnet": {"id": id(rg, &format!("virtualNetworks/{vnet}/subnets/GatewaySubnet"))},
                "publicIPAddress": {"id": id(rg, &format!("publicIPAddresses/{name}-pip"))}}}]
        });
        for (k, v) in extra.as_object().unwrap() {
            props[k] = v.clone();
        }
        let (s, b) = self.put(
            &net(rg, &format!("virtualNetworkGateways/{name}")),
            json!({"location": "westeurope", "properties": props}),
        );
        assert_eq!(s, 201, "{b}");
        assert_eq!(b["properties"]["provisioningState"], "Updating");
        self.wait_succeeded(&net(rg, &format!("virtualNetworkGateways/{name}")))
    }
}

pub fn id(rg: &str, rest: &str) -> String {
    format!("/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.Network/{rest}")
}

pub fn net(rg: &str, rest: &str) -> String {
    id(rg, rest)
}

/// Whether any route in the list has this prefix and next hop type and is Active.
pub fn has(routes: &[(String, String, String, String)], prefix: &str, hop: &str) -> bool {
    routes
        .iter()
        .any(|r| r.0 == prefix && r.1 == hop && r.3 == "Active")
}
