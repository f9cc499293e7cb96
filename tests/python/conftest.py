"""Fixtures for driving a real `vnet serve` with Azure's own clients.

One server per test session: `vnet serve --listen 127.0.0.1:0` (the OS picks a free port, the
server prints the one it got) with a fresh data directory. Its HTTPS certificate comes from the
CA it makes in that directory (`ca.pem`), and the operator principal it makes at first start is
read from `credentials.json`. The server is killed at the end of the session, also when tests
fail or the run is interrupted.

Environment:
  VNET_BIN         the vnet binary to run (default: `cargo build -p vnet`, then target/debug/vnet)
  CARGO_TARGET_DIR where cargo puts binaries (default: <repo>/target)
  AZ_BIN           the az executable (default: <repo>/.venv-az/bin/az, else `az` on PATH)
"""

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.identity import ClientSecretCredential
from azure.mgmt.network import NetworkManagementClient

REPO = Path(__file__).resolve().parents[2]
ARM_SCOPE = "https://management.azure.com/.default"
RESOURCES_API = "2024-11-01"
AUTHZ_API = "2022-04-01"
ROLE = {
    "Owner": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7",
    "Network Contributor": "4d97b98b-1d4f-4787-a291-c67834d212e7",
}

# Every (method, path) the SDK sent during the session, for the OpenAPI coverage check.
RECORDED = []


class Recorder(SansIOHTTPPolicy):
    """Remembers each request the SDK sends (method and path)."""

    def on_request(self, request):
        r = request.http_request
        RECORDED.append((r.method.upper(), urlparse(r.url).path))


def _binary():
    if os.environ.get("VNET_BIN"):
        return Path(os.environ["VNET_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    subprocess.run(["cargo", "build", "-p", "vnet"], cwd=REPO, check=True)
    return target / "debug" / "vnet"


class VnetServer:
    """A running `vnet serve`."""

    def __init__(self, binary, data_dir):
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir.parent / "server.log"
        self._log = open(self.log_path, "wb")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "info"))
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + 60
        while True:
            text = self.log()
            m = re.search(r"listening on (https://[^\s/]+)/", text)
            if m:
                self.base = m.group(1)
                break
            if self.proc.poll() is not None:
                raise RuntimeError(f"vnet serve exited with {self.proc.returncode}:\n{text}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"vnet serve did not start within 60 s:\n{text}")
            time.sleep(0.05)
        self.ca = str(self.data_dir / "ca.pem")
        self.creds = json.loads((self.data_dir / "credentials.json").read_text())

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def server(request):
    tmp = tempfile.mkdtemp(prefix="vnet-pytest-")
    srv = VnetServer(_binary(), Path(tmp) / "data")
    yield srv
    srv.stop()
    failed = request.session.testsfailed
    if failed:
        print(f"\n--- vnet serve log ({srv.log_path}) ---\n{srv.log()[-20000:]}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------ clients


def credential(server, creds):
    """azure-identity's ClientSecretCredential against vnet's token endpoint."""
    return ClientSecretCredential(
        creds["tenantId"],
        creds["clientId"],
        creds["clientSecret"],
        authority=server.base,
        disable_instance_discovery=True,
        connection_verify=server.ca,
    )


def network_client(server, creds, subscription=None):
    """NetworkManagementClient with a custom base_url, the vnet CA, default polling interval."""
    return NetworkManagementClient(
        credential(server, creds),
        subscription or creds.get("subscriptionId"),
        base_url=server.base,
        connection_verify=server.ca,
        per_call_policies=[Recorder()],
    )


class Arm:
    """Plain REST calls with a bearer token (for what azure-mgmt-network does not cover:
    resource groups, subscriptions, principals, role assignments)."""

    def __init__(self, server, creds):
        self.server = server
        self.creds = creds
        self.s = requests.Session()
        self.s.headers["Authorization"] = "Bearer " + get_token(server, creds)

    def call(self, method, path, body=None, api=RESOURCES_API):
        sep = "&" if "?" in path else "?"
        url = f"{self.server.base}{path}{sep}api-version={api}"
        # verify per request: a session's verify loses to REQUESTS_CA_BUNDLE from the environment.
        r = self.s.request(method, url, json=body, verify=self.server.ca)
        RECORDED.append((method.upper(), urlparse(url).path))
        return r

    def ok(self, method, path, body=None, api=RESOURCES_API):
        r = self.call(method, path, body, api)
        assert r.status_code < 300, f"{method} {path} -> {r.status_code} {r.text}"
        return r.json() if r.content else None

    # ----- operator helpers
    def group(self, sub, rg, location="westeurope"):
        return self.ok("PUT", f"/subscriptions/{sub}/resourcegroups/{rg}", {"location": location})

    def subscription(self, display):
        sub = str(uuid.uuid4())
        self.ok("PUT", f"/subscriptions/{sub}", {"displayName": display}, api="2024-11-01")
        return sub

    def principal(self, name):
        """A new service principal in the operator's tenant; returns its credentials."""
        tenant = self.creds["tenantId"]
        app = str(uuid.uuid4())
        p = self.ok("PUT", f"/providers/Vnet.Identity/tenants/{tenant}/servicePrincipals/{app}", {"displayName": name}, api="2024-01-01")
        return {"tenantId": tenant, "clientId": app, "clientSecret": p["password"], "objectId": p["objectId"]}

    def assign(self, scope, role, principal):
        name = str(uuid.uuid4())
        sub = scope.split("/")[2]
        return self.ok(
            "PUT",
            f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}",
            {"properties": {
                "roleDefinitionId": f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{ROLE[role]}",
                "principalId": principal["objectId"],
                "principalType": "ServicePrincipal",
            }},
            api=AUTHZ_API,
        )


def get_token(server, creds, scope=ARM_SCOPE):
    r = requests.post(
        f"{server.base}/{creds['tenantId']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": creds["clientId"], "client_secret": creds["clientSecret"], "scope": scope},
        verify=server.ca,
    )
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


@pytest.fixture(scope="session")
def operator(server):
    return Arm(server, server.creds)


@pytest.fixture(scope="session")
def net(server):
    return network_client(server, server.creds)


@pytest.fixture(scope="session")
def sub(server):
    return server.creds["subscriptionId"]


def net_id(sub, rg, rest):
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/{rest}"
