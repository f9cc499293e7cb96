//! `vnet vm`: workloads ("VMs") — a NIC plus the network namespace it is attached to — and the
//! data-plane commands on NICs (`nic attach/detach/capture`).
//!
//! A VM named NAME is the NIC `NAMEVMNic` (as `az vm create` names it) bound through vnet's
//! data-plane API (`/vnet/v1/bindings/{nic-id}`) to the namespace `vm-NAME`, which the agent
//! creates and deletes. `vnet vm exec` enters that namespace on this host and runs a command.
//!
//! Only what `vnet vm` made is ever removed: the server's agent refuses to create over (adopt)
//! or delete a namespace it did not make (`agent::owner`); `vm create` refuses a NIC already
//! bound elsewhere, and when it fails it deletes only the binding and NIC this call created;
//! `vm delete` refuses a NIC that is not bound as that VM.

use super::error::CliError;
use super::group::location_or_group;
use super::http::{Method, Wait};
use super::ids::{self, kind};
use super::output::Reply;
use super::table::TableStyle;
use super::Ctx;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum VmCommand {
    /// Create a VM: a NIC in a subnet and a network namespace where it appears as `eth0`.
    Create(VmCreateArgs),
    /// Run a command inside a VM's network namespace (on this host).
    Exec(VmExecArgs),
    /// Delete a VM: its namespace and its NIC.
    Delete(VmDeleteArgs),
    /// List the NICs attached to workloads, with their data-plane state.
    List,
}

#[derive(Debug, Clone, Args)]
pub struct VmCreateArgs {
    /// VM name.
    pub name: String,
    /// Resource group name.
    #[arg(short = 'g', long = "resource-group")]
    pub resource_group: String,
    /// Virtual network of the subnet.
    #[arg(long)]
    pub vnet: String,
    /// Subnet name.
    #[arg(long)]
    pub subnet: String,
    /// A static private IP address; without it the address is allocated dynamically.
    #[arg(long, value_name = "IP")]
    pub private_ip: Option<IpAddr>,
    /// Enable IP forwarding on the NIC (network virtual appliances).
    #[arg(long)]
    pub ip_forwarding: bool,
    /// Interface MTU (default 1500).
    #[arg(long)]
    pub mtu: Option<u16>,
}

#[derive(Debug, Clone, Args)]
pub struct VmExecArgs {
    /// VM name.
    pub name: String,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct VmDeleteArgs {
    /// VM name.
    pub name: String,
    /// Resource group name.
    #[arg(short = 'g', long = "resource-group")]
    pub resource_group: String,
}

/// `nic attach`: bind an existing NIC to an existing namespace (a container's).
#[derive(Debug, Clone, Args)]
pub struct NicAttachArgs {
    #[command(flatten)]
    pub target: super::args::Named,
    /// Namespace name (under /run/netns) or path (/proc/PID/ns/net).
    #[arg(long, value_name = "NAME|PATH")]
    pub netns: String,
    /// Interface name inside the namespace.
    #[arg(long, default_value = "eth0")]
    pub ifname: String,
    /// Interface MTU (default 1500).
    #[arg(long)]
    pub mtu: Option<u16>,
}

/// `nic capture`: write the NIC's packets to a pcap file.
#[derive(Debug, Clone, Args)]
pub struct NicCaptureArgs {
    #[command(flatten)]
    pub target: super::args::Named,
    /// How long to capture, in seconds.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// The pcap file to write.
    #[arg(short = 'w', long = "write", value_name = "FILE.pcap")]
    pub file: PathBuf,
}

/// The namespace of a VM.
pub fn vm_netns(name: &str) -> String {
    format!("vm-{name}")
}

/// The NIC of a VM.
pub fn vm_nic(name: &str) -> String {
    format!("{name}VMNic")
}

fn binding_url(nic_id: &str) -> String {
    format!("/vnet/v1/bindings{nic_id}")
}

/// GET that tells "absent" (404) from failure.
fn get_if_any(ctx: &Ctx, path: &str) -> Result<Option<Value>, CliError> {
    let r = ctx.client.send_raw(Method::Get, path, None)?;
    match r.status {
        404 => Ok(None),
        s if (200..300).contains(&s) => Ok(Some(r.json()?.unwrap_or(Value::Null))),
        s => Err(CliError::from_response(s, &r.body)),
    }
}

/// Whether a binding is the one `vm create NAME` makes.
fn is_vm_binding(b: &Value, name: &str) -> bool {
    b.get("managed") == Some(&Value::Bool(true))
        && b.get("netns").and_then(Value::as_str) == Some(vm_netns(name).as_str())
}

fn bind(ctx: &Ctx, nic_id: &str, body: &Value) -> Result<Value, CliError> {
    let r = ctx
        .client
        .send(Method::Put, &binding_url(nic_id), Some(body))?;
    let v = r.json()?.unwrap_or(Value::Null);
    if v.get("attached") == Some(&Value::Bool(false)) {
        let why = v
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("the data plane is off on the server");
        return Err(CliError::new(
            "NotAttached",
            format!("the NIC is bound but not attached: {why}"),
        ));
    }
    Ok(v)
}

pub fn run(ctx: &Ctx, cmd: VmCommand) -> Result<Reply, CliError> {
    match cmd {
        VmCommand::Create(a) => {
            let scope = ctx.scope(&a.resource_group);
            let subnet = scope.resolve_subnet(Some(&a.vnet), &a.subnet)?;
            let location = location_or_group(ctx, &a.resource_group, None)?;
            let mut ip = json!({"subnet": {"id": subnet}, "privateIPAllocationMethod": "Dynamic"});
            if let Some(addr) = a.private_ip {
                ip = json!({"subnet": {"id": subnet}, "privateIPAllocationMethod": "Static", "privateIPAddress": addr.to_string()});
            }
            let nic_id = scope.id(kind::NETWORK_INTERFACES, &vm_nic(&a.name));
            // What exists before this call is not this call's to remove on failure.
            let had_binding = get_if_any(ctx, &binding_url(&nic_id))?;
            if let Some(b) = had_binding.as_ref().filter(|b| !is_vm_binding(b, &a.name)) {
                return Err(CliError::new(
                    "VmConflict",
                    format!(
                        "NIC {nic_id} is already attached to network namespace {}; vm create does not take over a NIC bound elsewhere (use `vnet network nic detach` first)",
                        b.get("netns").and_then(Value::as_str).unwrap_or("?")
                    ),
                ));
            }
            let had_nic = get_if_any(ctx, &ids::network_url(&nic_id))?.is_some();
            let body = json!({"location": location, "properties": {"enableIPForwarding": a.ip_forwarding,
                "ipConfigurations": [{"name": "ipconfig1", "properties": ip}]}});
            let nic = ctx
                .client
                .put(&ids::network_url(&nic_id), &body, Wait::Yes)?
                .unwrap_or(Value::Null);
            let mut b = json!({"netns": vm_netns(&a.name), "managed": true});
            if let Some(m) = a.mtu {
                b["mtu"] = json!(m);
            }
            let bound = match bind(ctx, &nic_id, &b) {
                Ok(v) => v,
                Err(e) => {
                    // Undo only this call's own work: the binding if there was none, the NIC
                    // if it did not exist. The namespace is the agent's, which deletes only
                    // one it made itself.
                    if had_binding.is_none() {
                        let _ = ctx
                            .client
                            .send_raw(Method::Delete, &binding_url(&nic_id), None);
                    }
                    if !had_nic {
                        let _ = ctx.client.delete(&ids::network_url(&nic_id), Wait::Yes);
                    }
                    return Err(e);
                }
            };
            let addr = nic
                .pointer("/properties/ipConfigurations/0/properties/privateIPAddress")
                .cloned()
                .unwrap_or(Value::Null);
            Ok(Reply::value(
                Some(
                    json!({"name": a.name, "nic": nic_id, "privateIpAddress": addr, "netns": bound["netns"], "ifname": bound["ifname"], "attached": bound["attached"]}),
                ),
                TableStyle::Auto,
            ))
        }
        VmCommand::Delete(a) => {
            let nic_id = ctx
                .scope(&a.resource_group)
                .id(kind::NETWORK_INTERFACES, &vm_nic(&a.name));
            let binding = get_if_any(ctx, &binding_url(&nic_id))?;
            match &binding {
                Some(b) if !is_vm_binding(b, &a.name) => {
                    return Err(CliError::new(
                        "VmNotManaged",
                        format!(
                            "NIC {nic_id} is attached to network namespace {}, which vnet vm did not create; nothing was deleted (use `vnet network nic detach`)",
                            b.get("netns").and_then(Value::as_str).unwrap_or("?")
                        ),
                    ))
                }
                Some(_) => {
                    ctx.client
                        .send(Method::Delete, &binding_url(&nic_id), None)?;
                }
                None => {}
            }
            if get_if_any(ctx, &ids::network_url(&nic_id))?.is_none() {
                return Err(CliError::new(
                    "VmNotFound",
                    format!(
                        "VM {} was not found in resource group {} on this server (no NIC {}); a namespace named {} that exists is not this server's and was not touched",
                        a.name,
                        a.resource_group,
                        vm_nic(&a.name),
                        vm_netns(&a.name)
                    ),
                ));
            }
            ctx.client.delete(&ids::network_url(&nic_id), Wait::Yes)?;
            Ok(Reply::none())
        }
        VmCommand::List => {
            let v = ctx
                .client
                .send(Method::Get, "/vnet/v1/bindings", None)?
                .json()?
                .unwrap_or(Value::Null);
            let items = v
                .get("value")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Ok(Reply::list(items, TableStyle::Auto))
        }
        VmCommand::Exec(_) => Err(CliError::validation("vm exec runs locally")),
    }
}

/// `vnet vm exec NAME -- CMD...`: enters the VM's namespace and replaces this process.
pub fn exec(a: VmExecArgs) -> Result<(), CliError> {
    let path = agent::sys::netns_path(&vm_netns(&a.name));
    if !path.exists() {
        return Err(CliError::new(
            "VmNotFound",
            format!(
                "VM {} has no network namespace on this host ({})",
                a.name,
                path.display()
            ),
        ));
    }
    let e = agent::sys::exec_in_netns(&path, &a.command);
    Err(CliError::new(
        "ExecFailed",
        format!("cannot run {:?} in VM {}: {e}", a.command.join(" "), a.name),
    ))
}

pub fn nic_attach(ctx: &Ctx, a: NicAttachArgs) -> Result<Reply, CliError> {
    let nic_id = ctx
        .scope(&a.target.resource_group)
        .id(kind::NETWORK_INTERFACES, &a.target.name);
    let mut b = json!({"netns": a.netns, "managed": false, "ifname": a.ifname});
    if let Some(m) = a.mtu {
        b["mtu"] = json!(m);
    }
    Ok(Reply::value(
        Some(bind(ctx, &nic_id, &b)?),
        TableStyle::Auto,
    ))
}

pub fn nic_detach(ctx: &Ctx, t: super::args::Named) -> Result<Reply, CliError> {
    let nic_id = ctx
        .scope(&t.resource_group)
        .id(kind::NETWORK_INTERFACES, &t.name);
    ctx.client
        .send(Method::Delete, &binding_url(&nic_id), None)?;
    Ok(Reply::none())
}

pub fn nic_capture(ctx: &Ctx, a: NicCaptureArgs) -> Result<Reply, CliError> {
    let nic_id = ctx
        .scope(&a.target.resource_group)
        .id(kind::NETWORK_INTERFACES, &a.target.name);
    let r = ctx.client.send(
        Method::Post,
        &format!("/vnet/v1/capture{nic_id}?duration={}", a.duration),
        None,
    )?;
    std::fs::write(&a.file, &r.body).map_err(|e| {
        CliError::new(
            "WriteFailed",
            format!("cannot write {}: {e}", a.file.display()),
        )
    })?;
    eprintln!("wrote {} bytes to {}", r.body.len(), a.file.display());
    Ok(Reply::none())
}
