"""The sign-in side: cloud metadata, OpenID metadata, tokens, and ARM's 401/403 answers."""

import base64
import json
import ssl
import socket
import time
from urllib.parse import urlparse

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import ClientSecretCredential

from conftest import ARM_SCOPE, Arm, get_token, network_client


def claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_tls_is_verified_with_the_data_dir_ca(server):
    # The CA in the data dir verifies the server; without it the certificate is untrusted.
    host = urlparse(server.base)
    ctx = ssl.create_default_context(cafile=server.ca)
    with socket.create_connection((host.hostname, host.port)) as s, ctx.wrap_socket(s, server_hostname=host.hostname) as t:
        assert t.version() in ("TLSv1.2", "TLSv1.3")
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{server.base}/metadata/endpoints", verify=True)
    # "localhost" is covered too.
    r = requests.get(f"https://localhost:{host.port}/metadata/endpoints?api-version=2022-09-01", verify=server.ca)
    assert r.status_code == 200


def test_cloud_metadata(server):
    r = requests.get(f"{server.base}/metadata/endpoints?api-version=2022-09-01", verify=server.ca)
    assert r.status_code == 200, r.text
    md = r.json()
    assert md["resourceManager"] == server.base + "/"
    assert md["authentication"]["loginEndpoint"] == server.base + "/"
    assert md["authentication"]["audiences"][0] == "https://management.core.windows.net/"
    assert "suffixes" in md
    # The 2019-05-01 form (ARM_CLOUD_METADATA_URL) is a list of clouds.
    listed = requests.get(f"{server.base}/metadata/endpoints?api-version=2019-05-01", verify=server.ca).json()
    assert isinstance(listed, list) and listed[0]["name"] == "vnet"


def test_openid_configuration_and_keys(server):
    tenant = server.creds["tenantId"]
    v2 = requests.get(f"{server.base}/{tenant}/v2.0/.well-known/openid-configuration", verify=server.ca).json()
    assert v2["token_endpoint"] == f"{server.base}/{tenant}/oauth2/v2.0/token"
    assert v2["issuer"] == f"{server.base}/{tenant}/v2.0"
    v1 = requests.get(f"{server.base}/{tenant}/.well-known/openid-configuration", verify=server.ca).json()
    assert v1["token_endpoint"] == f"{server.base}/{tenant}/oauth2/token"
    jwks = requests.get(v2["jwks_uri"], verify=server.ca).json()
    key = jwks["keys"][0]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["alg"] == "ES256"
    # A token's header names that key.
    token = get_token(server, server.creds)
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    assert header["alg"] == "ES256" and header["kid"] == key["kid"]
    # Unknown tenants are refused as AAD does.
    r = requests.get(f"{server.base}/no-such-tenant/v2.0/.well-known/openid-configuration", verify=server.ca)
    assert r.status_code == 400 and "AADSTS90002" in r.json()["error_description"]


def test_token_endpoints(server):
    c = server.creds
    t = claims(get_token(server, c))
    assert t["aud"] == "https://management.azure.com"
    assert t["tid"] == c["tenantId"] and t["appid"] == c["clientId"]
    assert t["exp"] - t["iat"] >= 3000
    # v1 endpoint with a resource.
    r = requests.post(
        f"{server.base}/{c['tenantId']}/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": c["clientId"], "client_secret": c["clientSecret"], "resource": "https://management.core.windows.net/"},
        verify=server.ca,
    )
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer" and claims(r.json()["access_token"])["ver"] == "1.0"
    # HTTP Basic client authentication.
    r = requests.post(
        f"{server.base}/{c['tenantId']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "scope": ARM_SCOPE},
        auth=(c["clientId"], c["clientSecret"]),
        verify=server.ca,
    )
    assert r.status_code == 200, r.text
    # A wrong secret: 401 invalid_client, and the secret is not echoed.
    r = requests.post(
        f"{server.base}/{c['tenantId']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": c["clientId"], "client_secret": "wrong-secret-value", "scope": ARM_SCOPE},
        verify=server.ca,
    )
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    assert "AADSTS7000215" in r.json()["error_description"]
    assert "wrong-secret-value" not in r.text
    # An unknown client, a foreign resource.
    r = requests.post(
        f"{server.base}/{c['tenantId']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x", "scope": ARM_SCOPE},
        verify=server.ca,
    )
    assert r.status_code == 400 and r.json()["error"] == "unauthorized_client"
    r = requests.post(
        f"{server.base}/{c['tenantId']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": c["clientId"], "client_secret": c["clientSecret"], "scope": "https://graph.microsoft.com/.default"},
        verify=server.ca,
    )
    assert r.status_code == 400 and r.json()["error"] == "invalid_resource"


def test_arm_refuses_missing_and_bad_tokens(server):
    url = f"{server.base}/subscriptions?api-version=2022-12-01"
    r = requests.get(url, verify=server.ca)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "AuthenticationFailed"
    assert r.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    r = requests.get(url, verify=server.ca, headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
    # A token whose signature was tampered with.
    tok = get_token(server, server.creds)
    bad = tok[:-4] + ("AAAA" if not tok.endswith("AAAA") else "BBBB")
    r = requests.get(url, verify=server.ca, headers={"Authorization": "Bearer " + bad})
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_sdk_with_a_wrong_secret_fails_to_authenticate(server, sub):
    creds = dict(server.creds, clientSecret="definitely-not-the-secret")
    client = network_client(server, creds, sub)
    with pytest.raises(ClientAuthenticationError):
        list(client.virtual_networks.list_all())


def test_tenants_and_subscriptions(server, operator):
    tenants = operator.ok("GET", "/tenants", api="2022-12-01")["value"]
    assert [t["tenantId"] for t in tenants] == [server.creds["tenantId"]]
    subs = operator.ok("GET", "/subscriptions", api="2022-12-01")["value"]
    ids = [s["subscriptionId"] for s in subs]
    assert server.creds["subscriptionId"] in ids
    s = operator.ok("GET", f"/subscriptions/{server.creds['subscriptionId']}", api="2022-12-01")
    assert s["state"] == "Enabled" and s["tenantId"] == server.creds["tenantId"]
    # The operator creates a subscription; it is listed and usable at once.
    new = operator.subscription("team-b")
    assert new in [s["subscriptionId"] for s in operator.ok("GET", "/subscriptions", api="2022-12-01")["value"]]
    operator.group(new, "rg-b")
    # A subscription that does not exist.
    r = operator.call("GET", "/subscriptions/11111111-2222-3333-4444-555555555555/resourcegroups")
    assert r.status_code == 404 and r.json()["error"]["code"] == "SubscriptionNotFound"


def test_a_principal_without_roles_gets_403(server, operator, sub):
    p = operator.principal("nobody-special")
    arm = Arm(server, p)
    # It sees no subscription and may not read or write anything.
    assert arm.ok("GET", "/subscriptions", api="2022-12-01")["value"] == []
    r = arm.call("PUT", f"/subscriptions/{sub}/resourcegroups/forbidden", {"location": "westeurope"})
    assert r.status_code == 403
    err = r.json()["error"]
    assert err["code"] == "AuthorizationFailed"
    assert "Microsoft.Resources/subscriptions/resourcegroups/write" in err["message"]
    assert p["objectId"] in err["message"]
    # Through the SDK the refusal is an HttpResponseError with ARM's code.
    client = network_client(server, p, sub)
    with pytest.raises(HttpResponseError) as e:
        list(client.virtual_networks.list_all())
    assert e.value.status_code == 403 and e.value.error.code == "AuthorizationFailed"
    # A Reader may read but not write.
    operator.group(sub, "readable")
    operator.assign(f"/subscriptions/{sub}/resourceGroups/readable", "Reader", p)
    assert arm.ok("GET", f"/subscriptions/{sub}/resourcegroups/readable")["name"] == "readable"
    r = arm.call("PUT", f"/subscriptions/{sub}/resourcegroups/readable", {"location": "westeurope"})
    assert r.status_code == 403
    # Only owners manage role assignments.
    r = arm.call(
        "PUT",
        f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleAssignments/00000000-0000-0000-0000-0000000000ab",
        {"properties": {"roleDefinitionId": "Owner", "principalId": p["objectId"]}},
        api="2022-04-01",
    )
    assert r.status_code == 403


def test_deleted_principal_tokens_stop_working(server, operator, sub):
    p = operator.principal("short-lived")
    operator.assign(f"/subscriptions/{sub}", "Reader", p)
    arm = Arm(server, p)
    assert arm.call("GET", f"/subscriptions/{sub}/resourcegroups").status_code == 200
    operator.ok("DELETE", f"/providers/Vnet.Identity/tenants/{p['tenantId']}/servicePrincipals/{p['clientId']}", api="2024-01-01")
    r = arm.call("GET", f"/subscriptions/{sub}/resourcegroups")
    assert r.status_code == 401 and r.json()["error"]["code"] == "InvalidAuthenticationToken"
    # And it cannot sign in again.
    r = requests.post(
        f"{server.base}/{p['tenantId']}/oauth2/v2.0/token",
        data={"grant_type": "client_credentials", "client_id": p["clientId"], "client_secret": p["clientSecret"], "scope": ARM_SCOPE},
        verify=server.ca,
    )
    assert r.status_code == 400


def test_identity_credential_gets_and_caches_tokens(server):
    c = server.creds
    cred = ClientSecretCredential(c["tenantId"], c["clientId"], c["clientSecret"], authority=server.base, disable_instance_discovery=True, connection_verify=server.ca)
    t1 = cred.get_token(ARM_SCOPE)
    assert t1.expires_on > time.time() + 3000
    assert cred.get_token(ARM_SCOPE).token == t1.token
