"""The real Azure CLI against vnet: `az cloud register`, `az login --service-principal`, then
`az network vnet …`, `az network vnet peering …` and `az network vnet-gateway …`.

az runs from its own venv (scripts/test-python.sh makes .venv-az) with a private
AZURE_CONFIG_DIR, trusting vnet's CA through REQUESTS_CA_BUNDLE. MSAL's instance discovery
(a call to Microsoft's login host) is turned off with `core.instance_discovery=false`, as for
Azure Stack.
"""

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import REPO

RG = "az-rg"


def az_binary():
    if "AZ_BIN" in os.environ:
        # Set empty by scripts/test-python.sh when azure-cli could not be installed.
        return os.environ["AZ_BIN"] or None
    local = REPO / ".venv-az" / "bin" / "az"
    if local.exists():
        return str(local)
    return shutil.which("az")


class Az:
    def __init__(self, binary, server):
        self.binary = binary
        self.config = tempfile.mkdtemp(prefix="vnet-az-")
        self.env = dict(
            os.environ,
            AZURE_CONFIG_DIR=self.config,
            REQUESTS_CA_BUNDLE=server.ca,
            AZURE_CORE_COLLECT_TELEMETRY="false",
            AZURE_CORE_NO_COLOR="true",
            AZURE_CORE_ONLY_SHOW_ERRORS="true",
            AZURE_CORE_SURVEY_MESSAGE="false",
        )
        self.env.pop("AZURE_CLI_DISABLE_CONNECTION_VERIFICATION", None)

    def run(self, *args, check=True, secret=None):
        p = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, timeout=300)
        if check and p.returncode != 0:
            shown = " ".join(a.replace(secret, "***") if secret else a for a in args)
            out = f"{p.stderr}\n{p.stdout}"
            raise AssertionError(f"az {shown} failed ({p.returncode}):\n" + (out.replace(secret, "***") if secret else out))
        return p

    def json(self, *args):
        out = self.run(*args, "-o", "json").stdout
        return json.loads(out) if out.strip() else None


@pytest.fixture(scope="module")
def az(server):
    binary = az_binary()
    if not binary:
        pytest.skip("azure-cli is not installed (scripts/test-python.sh installs it into .venv-az)")
    a = Az(binary, server)
    c = server.creds
    a.run("config", "set", "core.instance_discovery=false")
    a.run("cloud", "register", "-n", "vnet", "--endpoint-resource-manager", server.base)
    a.run("cloud", "set", "-n", "vnet")
    # --password=… because a secret may start with "-"; the secret stays out of failure messages.
    login = a.run("login", "--service-principal", f"--username={c['clientId']}", f"--password={c['clientSecret']}",
                  f"--tenant={c['tenantId']}", "-o", "json", secret=c["clientSecret"])
    accounts = json.loads(login.stdout)
    assert any(s["id"] == c["subscriptionId"] and s["isDefault"] for s in accounts), accounts
    a.run("account", "set", "-s", c["subscriptionId"])
    yield a
    shutil.rmtree(a.config, ignore_errors=True)


def test_cloud_and_account(az, server):
    cloud = az.json("cloud", "show", "-n", "vnet")
    assert cloud["endpoints"]["resourceManager"].rstrip("/") == server.base
    assert cloud["endpoints"]["activeDirectory"].rstrip("/") == server.base
    acct = az.json("account", "show")
    assert acct["tenantId"] == server.creds["tenantId"]
    assert acct["user"]["type"] == "servicePrincipal"


def test_vnets_and_peerings(az):
    g = az.json("group", "create", "-n", RG, "-l", "westeurope")
    assert g["properties"]["provisioningState"] == "Succeeded"
    hub = az.json("network", "vnet", "create", "-g", RG, "-n", "az-hub", "--address-prefixes", "10.20.0.0/16",
                  "--subnet-name", "GatewaySubnet", "--subnet-prefixes", "10.20.255.0/27")
    assert hub["newVNet"]["addressSpace"]["addressPrefixes"] == ["10.20.0.0/16"]
    assert hub["newVNet"]["subnets"][0]["name"] == "GatewaySubnet"
    az.json("network", "vnet", "create", "-g", RG, "-n", "az-spoke", "--address-prefixes", "10.21.0.0/16")
    s = az.json("network", "vnet", "subnet", "create", "-g", RG, "--vnet-name", "az-spoke", "-n", "app", "--address-prefixes", "10.21.1.0/24")
    assert s["addressPrefix"] == "10.21.1.0/24"
    names = sorted(v["name"] for v in az.json("network", "vnet", "list", "-g", RG))
    assert names == ["az-hub", "az-spoke"]
    shown = az.json("network", "vnet", "show", "-g", RG, "-n", "az-spoke")
    assert shown["provisioningState"] == "Succeeded"

    p1 = az.json("network", "vnet", "peering", "create", "-g", RG, "-n", "hub-to-spoke", "--vnet-name", "az-hub",
                 "--remote-vnet", "az-spoke", "--allow-vnet-access")
    assert p1["peeringState"] == "Initiated"
    p2 = az.json("network", "vnet", "peering", "create", "-g", RG, "-n", "spoke-to-hub", "--vnet-name", "az-spoke",
                 "--remote-vnet", "az-hub", "--allow-vnet-access")
    assert p2["peeringState"] == "Connected"
    p1 = az.json("network", "vnet", "peering", "show", "-g", RG, "-n", "hub-to-spoke", "--vnet-name", "az-hub")
    assert p1["peeringState"] == "Connected"
    listed = az.json("network", "vnet", "peering", "list", "-g", RG, "--vnet-name", "az-spoke")
    assert [(p["name"], p["peeringState"]) for p in listed] == [("spoke-to-hub", "Connected")]


def test_refusals_carry_azure_codes(az):
    az.json("network", "vnet", "create", "-g", RG, "-n", "az-clash", "--address-prefixes", "10.20.128.0/17")
    p = az.run("network", "vnet", "peering", "create", "-g", RG, "-n", "hub-to-clash", "--vnet-name", "az-hub",
               "--remote-vnet", "az-clash", "--allow-vnet-access", check=False)
    assert p.returncode != 0
    assert "VnetAddressSpacesOverlap" in p.stderr, p.stderr


def test_vpn_gateway(az):
    az.json("network", "public-ip", "create", "-g", RG, "-n", "az-gw-pip", "--sku", "Standard")
    gw = az.json("network", "vnet-gateway", "create", "-g", RG, "-n", "az-gw", "--vnet", "az-hub",
                 "--public-ip-addresses", "az-gw-pip", "--gateway-type", "Vpn", "--vpn-type", "RouteBased", "--sku", "VpnGw1")
    gw = gw.get("vnetGateway", gw)
    assert gw["provisioningState"] == "Succeeded"
    shown = az.json("network", "vnet-gateway", "show", "-g", RG, "-n", "az-gw")
    assert shown["gatewayType"] == "Vpn" and shown["sku"]["name"] == "VpnGw1"
    assert shown["bgpSettings"]["asn"] == 65515
    listed = az.json("network", "vnet-gateway", "list", "-g", RG)
    assert [g["name"] for g in listed] == ["az-gw"]
    # Now the spoke can use the hub's gateway.
    az.run("network", "vnet", "peering", "update", "-g", RG, "-n", "hub-to-spoke", "--vnet-name", "az-hub",
           "--set", "allowGatewayTransit=true")
    p = az.json("network", "vnet", "peering", "update", "-g", RG, "-n", "spoke-to-hub", "--vnet-name", "az-spoke",
                "--set", "useRemoteGateways=true")
    assert p["useRemoteGateways"] is True and p["peeringState"] == "Connected"
