"""The OpenAPI document vnet serves against what it implements: every route the clients used in
this session is documented, and every documented route answers (no route-miss 404/405)."""

import uuid

import pytest
import requests

from conftest import RECORDED, ROLE

FILL = {
    "location": "westeurope",
    "operationId": "00000000-0000-0000-0000-00000000f00d",
    "roleDefinitionId": ROLE["Reader"],
    "aliasName": "openapi-alias",
}


@pytest.fixture(scope="module")
def doc(server):
    r = requests.get(f"{server.base}/openapi.json", verify=server.ca)
    assert r.status_code == 200
    d = r.json()
    assert d["openapi"].startswith("3.")
    return d


def matches(template, path):
    t = template.strip("/").split("/")
    p = path.strip("/").split("/")
    return len(t) == len(p) and all((a.startswith("{") and a.endswith("}") and b) or a.lower() == b.lower() for a, b in zip(t, p))


def documented(doc, method, path):
    return any(matches(t, path) and method.lower() in ops for t, ops in doc["paths"].items())


def test_every_route_used_is_documented(doc):
    assert RECORDED, "run with the other client tests: they record the requests they send"
    missing = sorted({(m, p) for m, p in RECORDED if not documented(doc, m, p)})
    assert not missing, f"routes used but not in /openapi.json: {missing}"


def test_every_documented_route_answers(server, operator, doc):
    sub = server.creds["subscriptionId"]
    tenant = server.creds["tenantId"]
    operator.group(sub, "openapi-rg")
    fill = dict(FILL, subscriptionId=sub, resourceGroupName="openapi-rg", tenant=tenant, tenantId=tenant)
    misses = []
    checked = 0
    for template, ops in doc["paths"].items():
        path = template
        for seg in template.strip("/").split("/"):
            if seg.startswith("{"):
                name = seg[1:-1]
                path = path.replace(seg, fill.get(name, f"openapi-{name.lower()}"[:60]), 1)
        for method, op in ops.items():
            if method not in ("get", "put", "post", "patch", "delete", "head"):
                continue
            # Do not delete the group the other calls use, nor the operator's own records.
            if method == "delete" and template.endswith("{resourceGroupName}"):
                continue
            if method == "delete" and "{appId}" in template:
                path_used = path.replace("openapi-appid", str(uuid.uuid4()))
            else:
                path_used = path
            if op["operationId"].startswith("Token_"):
                r = requests.post(f"{server.base}{path_used}", data={}, verify=server.ca)
            else:
                sep = "&" if "?" in path_used else "?"
                url = f"{server.base}{path_used}{sep}api-version=2025-07-01"
                body = {} if method in ("put", "post", "patch") else None
                r = operator.s.request(method.upper(), url, json=body, verify=server.ca)
            checked += 1
            code = None
            try:
                err = r.json().get("error") if r.content and isinstance(r.json(), dict) else None
                code = err.get("code") if isinstance(err, dict) else err
            except ValueError:
                pass
            text = r.text if r.content else ""
            route_miss = (r.status_code == 404 and code == "NotFound" and "No route matches" in text) or r.status_code == 405
            if route_miss:
                misses.append(f"{method.upper()} {template} -> {r.status_code} {text[:200]}")
    assert checked > 50
    assert not misses, "documented but not answering:\n" + "\n".join(misses)
