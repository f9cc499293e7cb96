//! ARM protocol semantics: create/update status codes, etags and conditional requests, tag
//! PATCH, paging, long-running operations, resource-group deletion, concurrency of IPAM, and
//! the OpenAPI document against the routes.

mod common;
use api::routes::AppOptions;
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

#[test]
fn put_is_idempotent_with_etags() {
    let s = Server::start();
    s.rg("rg");
    let body = json!({"location": "West Europe", "tags": {"env": "lab"}, "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}}});
    let (st, a) = s.put(&net("rg", "virtualNetworks/v"), body.clone());
    assert_eq!(st, 201);
    assert_eq!(a["location"], "westeurope");
    assert_eq!(a["type"], "Microsoft.Network/virtualNetworks");
    assert_eq!(a["properties"]["provisioningState"], "Succeeded");
    assert!(a["etag"].as_str().unwrap().starts_with("W/\""));
    let (st, b) = s.put(&net("rg", "virtualNetworks/v"), body.clone());
    assert_eq!(st, 200);
    assert_ne!(a["etag"], b["etag"], "every write gets a new etag");
    assert_eq!(
        a["properties"]["resourceGuid"], b["properties"]["resourceGuid"],
        "the guid survives updates"
    );
    // Echoing a GET body back (read-only fields included) is accepted.
    let g = s.ok_get(&net("rg", "virtualNetworks/v"));
    assert_eq!(s.put(&net("rg", "virtualNetworks/v"), g.clone()).0, 200);
    // If-Match with a stale etag fails; with the current one succeeds.
    let stale = b["etag"].as_str().unwrap().to_string();
    let cur = s.ok_get(&net("rg", "virtualNetworks/v"))["etag"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .client
        .put(s.url(&net("rg", "virtualNetworks/v")))
        .header("If-Match", stale)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 412);
    assert_eq!(
        r.json::<Value>().unwrap()["error"]["code"],
        "PreconditionFailed"
    );
    let r = s
        .client
        .put(s.url(&net("rg", "virtualNetworks/v")))
        .header("If-Match", cur)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = s
        .client
        .put(s.url(&net("rg", "virtualNetworks/v")))
        .header("If-None-Match", "*")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        412,
        "If-None-Match: * refuses to overwrite"
    );
    // Tags PATCH.
    let (st, p) = s.patch(
        &net("rg", "virtualNetworks/v"),
        json!({"tags": {"tag1": "value1"}}),
    );
    assert_eq!(st, 200);
    assert_eq!(p["tags"], json!({"tag1": "value1"}));
    assert_eq!(
        p["properties"]["addressSpace"]["addressPrefixes"],
        json!(["10.0.0.0/16"])
    );
    // Case-insensitive paths.
    let low = net("rg", "virtualNetworks/v").to_ascii_lowercase();
    assert_eq!(s.ok_get(&low)["name"], "v");
}

#[test]
fn lists_page_with_next_link() {
    let s = Server::start_with(AppOptions {
        page_size: 2,
        provision_delay: Duration::from_millis(50),
        ..Default::default()
    });
    s.rg("rg");
    for i in 0..5 {
        s.vnet("rg", &format!("v{i}"), &["10.0.0.0/16"]);
    }
    let mut names = vec![];
    let mut url = s.url(&format!(
        "/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks"
    ));
    loop {
        let b: Value = s.client.get(&url).send().unwrap().json().unwrap();
        for v in b["value"].as_array().unwrap() {
            names.push(v["name"].as_str().unwrap().to_string());
        }
        match b["nextLink"].as_str() {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(names, ["v0", "v1", "v2", "v3", "v4"]);
    let all = s.ok_get(&format!(
        "/subscriptions/{SUB}/providers/Microsoft.Network/virtualNetworks"
    ));
    assert_eq!(all["value"].as_array().unwrap().len(), 2);
    assert!(all["nextLink"].is_string());
}

#[test]
fn long_running_operations() {
    let s = Server::start_with(AppOptions {
        provision_delay: Duration::from_millis(300),
        ..Default::default()
    });
    s.rg("rg");
    let r = s.client.put(s.url(&net("rg", "localNetworkGateways/l"))).json(&json!({"location": "Central US", "properties": {"fqdn": "site1.contoso.com", "localNetworkAddressSpace": {"addressPrefixes": ["10.1.0.0/16"]}}})).send().unwrap();
    assert_eq!(r.status().as_u16(), 201);
    assert_eq!(r.headers()["retry-after"], "1");
    let op_url = r.headers()["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_string();
    let loc_url = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        op_url.contains("/providers/Microsoft.Network/locations/centralus/operations/"),
        "{op_url}"
    );
    let b: Value = r.json().unwrap();
    assert_eq!(b["properties"]["provisioningState"], "Updating");
    let st: Value = s.client.get(&op_url).send().unwrap().json().unwrap();
    assert_eq!(st["status"], "InProgress");
    let mut done = false;
    for _ in 0..50 {
        let st: Value = s.client.get(&op_url).send().unwrap().json().unwrap();
        if st["status"] == "Succeeded" {
            done = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(done, "the operation finishes");
    assert_eq!(
        s.ok_get(&net("rg", "localNetworkGateways/l"))["properties"]["provisioningState"],
        "Succeeded"
    );
    let res: Value = s.client.get(&loc_url).send().unwrap().json().unwrap();
    assert_eq!(res["name"], "l");
    // Deleting an asynchronous resource answers 202 with polling URLs.
    let r = s
        .client
        .delete(s.url(&net("rg", "localNetworkGateways/l")))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let op_url = r.headers()["azure-asyncoperation"]
        .to_str()
        .unwrap()
        .to_string();
    let st: Value = s.client.get(&op_url).send().unwrap().json().unwrap();
    assert_eq!(st["status"], "Succeeded");
    s.refused(
        s.get(&net("rg", "localNetworkGateways/l")),
        404,
        "ResourceNotFound",
    );
}

#[test]
fn deleting_a_group_deletes_what_it_holds() {
    let s = Server::start();
    s.rg("a");
    s.rg("b");
    s.vnet("a", "va", &["10.1.0.0/16"]);
    s.subnet("a", "va", "s", "10.1.0.0/24");
    s.nic("a", "n", "va", "s", None);
    s.vnet("b", "vb", &["10.2.0.0/16"]);
    let pa = json!({"properties": {"remoteVirtualNetwork": {"id": id("b", "virtualNetworks/vb")}}});
    s.ok_put(
        &net("a", "virtualNetworks/va/virtualNetworkPeerings/to-b"),
        pa,
    );
    let pb = json!({"properties": {"remoteVirtualNetwork": {"id": id("a", "virtualNetworks/va")}}});
    let b = s.ok_put(
        &net("b", "virtualNetworks/vb/virtualNetworkPeerings/to-a"),
        pb,
    );
    assert_eq!(b["properties"]["peeringState"], "Connected");
    let r = s
        .client
        .delete(s.url(&format!("/subscriptions/{SUB}/resourcegroups/a")))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    s.refused(
        s.get(&format!("/subscriptions/{SUB}/resourcegroups/a")),
        404,
        "ResourceGroupNotFound",
    );
    s.refused(
        s.get(&net("a", "networkInterfaces/n")),
        404,
        "ResourceGroupNotFound",
    );
    let link = s.ok_get(&net("b", "virtualNetworks/vb/virtualNetworkPeerings/to-a"));
    assert_eq!(link["properties"]["peeringState"], "Disconnected");
    // Re-creating the group starts empty.
    s.rg("a");
    let l = s.ok_get(&net("a", "virtualNetworks"));
    assert_eq!(l["value"], json!([]));
}

/// Concurrent NIC creations in one subnet never receive the same address.
#[test]
fn concurrent_dynamic_allocation_is_unique() {
    let s = Server::start();
    s.rg("rg");
    s.vnet("rg", "v", &["10.0.0.0/16"]);
    s.subnet("rg", "v", "s", "10.0.0.0/24");
    let base = s.base.clone();
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let base = base.clone();
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                let mut ips = vec![];
                for i in 0..15 {
                    let body = json!({"location": "westeurope", "properties": {"ipConfigurations": [{"name": "c", "properties": {"subnet": {"id": id("rg", "virtualNetworks/v/subnets/s")}}}]}});
                    let url = format!("{base}{}?api-version={API}", net("rg", &format!("networkInterfaces/n{t}-{i}")));
                    let b: Value = c.put(url).json(&body).send().unwrap().json().unwrap();
                    ips.push(b["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"].as_str().unwrap().to_string());
                }
                ips
            })
        })
        .collect();
    let mut all: Vec<String> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), n, "an address was handed out twice");
    assert_eq!(n, 120);
}

/// Every path in the OpenAPI document answers (with a resource, a list, or an ARM error that
/// is not "no such route"), and undocumented paths are refused.
#[test]
fn openapi_matches_routes() {
    let s = Server::start();
    let doc: Value = s
        .client
        .get(format!("{}/openapi.json", s.base))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() > 30);
    for (p, ops) in paths {
        let concrete = p
            .replace("{subscriptionId}", SUB)
            .replace("{resourceGroupName}", "rg")
            .replace("{location}", "westeurope")
            .replace("{operationId}", "00000000-0000-0000-0000-000000000001");
        let concrete = regex_free_fill(&concrete);
        for (m, _) in ops.as_object().unwrap() {
            let method = reqwest::Method::from_bytes(m.to_ascii_uppercase().as_bytes()).unwrap();
            let r = s
                .client
                .request(method.clone(), s.url(&concrete))
                .json(&json!({}))
                .send()
                .unwrap();
            let st = r.status().as_u16();
            let body: Value = r.json().unwrap_or(Value::Null);
            assert_ne!(
                body["error"]["code"], "NotFound",
                "{m} {p} is documented but not routed"
            );
            assert_ne!(st, 405, "{m} {p} is documented but not allowed");
        }
    }
    s.refused(
        s.get(&net("rg", "virtualNetworks/v/bogusAction")),
        404,
        "NotFound",
    );
}

/// Replaces `{name}` placeholders with `x`.
fn regex_free_fill(p: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for c in p.chars() {
        match c {
            '{' => {
                skip = true;
                out.push('x');
            }
            '}' => skip = false,
            _ if !skip => out.push(c),
            _ => {}
        }
    }
    out
}
