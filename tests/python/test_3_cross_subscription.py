"""Peering across subscriptions: the principal must be allowed to write the local peering and
to peer the remote virtual network (Microsoft.Network/virtualNetworks/peer/action)."""

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.network import models as m

from conftest import Arm, net_id, network_client

LOC = "westeurope"


@pytest.fixture(scope="module")
def two_subscriptions(server, operator, sub):
    sub_b = operator.subscription("networking team B")
    operator.group(sub, "xa", LOC)
    operator.group(sub_b, "xb", LOC)
    op_a = network_client(server, server.creds, sub)
    op_b = network_client(server, server.creds, sub_b)
    op_a.virtual_networks.begin_create_or_update("xa", "vnet-a", m.VirtualNetwork(location=LOC, address_space=m.AddressSpace(address_prefixes=["10.50.0.0/16"]))).result()
    op_b.virtual_networks.begin_create_or_update("xb", "vnet-b", m.VirtualNetwork(location=LOC, address_space=m.AddressSpace(address_prefixes=["10.60.0.0/16"]))).result()
    return sub, sub_b


def peering(remote_id):
    return m.VirtualNetworkPeering(remote_virtual_network=m.SubResource(id=remote_id), allow_virtual_network_access=True)


def test_cross_subscription_peering_needs_peer_permission_on_the_remote(server, operator, two_subscriptions):
    sub_a, sub_b = two_subscriptions
    a_id = net_id(sub_a, "xa", "virtualNetworks/vnet-a")
    b_id = net_id(sub_b, "xb", "virtualNetworks/vnet-b")

    # Team A: Network Contributor on its own resource group only.
    team_a = operator.principal("team-a")
    operator.assign(f"/subscriptions/{sub_a}/resourceGroups/xa", "Network Contributor", team_a)
    net_a = network_client(server, team_a, sub_a)
    with pytest.raises(HttpResponseError) as e:
        net_a.virtual_network_peerings.begin_create_or_update("xa", "vnet-a", "a-to-b", peering(b_id)).result()
    assert e.value.status_code == 403
    assert e.value.error.code == "LinkedAuthorizationFailed"
    assert "Microsoft.Network/virtualNetworks/peer/action" in e.value.error.message
    assert b_id in e.value.error.message
    # Nothing was written.
    assert list(net_a.virtual_network_peerings.list("xa", "vnet-a")) == []

    # A Reader role on the remote VNet is not enough either.
    operator.assign(b_id, "Reader", team_a)
    with pytest.raises(HttpResponseError) as e:
        net_a.virtual_network_peerings.begin_create_or_update("xa", "vnet-a", "a-to-b", peering(b_id)).result()
    assert e.value.error.code == "LinkedAuthorizationFailed"

    # Network Contributor on the remote VNet grants peer/action: the link is made.
    operator.assign(b_id, "Network Contributor", team_a)
    p = net_a.virtual_network_peerings.begin_create_or_update("xa", "vnet-a", "a-to-b", peering(b_id)).result()
    assert p.peering_state == "Initiated"
    assert p.remote_virtual_network.id.lower() == b_id.lower()

    # Team B may write in subscription B but may not peer A's VNet.
    team_b = operator.principal("team-b")
    operator.assign(f"/subscriptions/{sub_b}", "Contributor", team_b)
    net_b = network_client(server, team_b, sub_b)
    with pytest.raises(HttpResponseError) as e:
        net_b.virtual_network_peerings.begin_create_or_update("xb", "vnet-b", "b-to-a", peering(a_id)).result()
    assert e.value.error.code == "LinkedAuthorizationFailed"
    # Team B cannot even read subscription A.
    with pytest.raises(HttpResponseError) as e:
        list(network_client(server, team_b, sub_a).virtual_networks.list("xa"))
    assert e.value.status_code == 403

    # With Network Contributor on vnet-a, team B completes the pair: both links Connected.
    operator.assign(a_id, "Network Contributor", team_b)
    q = net_b.virtual_network_peerings.begin_create_or_update("xb", "vnet-b", "b-to-a", peering(a_id)).result()
    assert q.peering_state == "Connected"
    assert net_a.virtual_network_peerings.get("xa", "vnet-a", "a-to-b").peering_state == "Connected"

    # Effective routes in A show B's space over the peering.
    net_a.network_interfaces.begin_create_or_update("xa", "vm-a", m.NetworkInterface(location=LOC, ip_configurations=[
        m.NetworkInterfaceIPConfiguration(name="ipconfig1", subnet=m.Subnet(id=net_a.subnets.begin_create_or_update("xa", "vnet-a", "default", m.Subnet(address_prefix="10.50.0.0/24")).result().id))
    ])).result()
    r = net_a.network_interfaces.begin_get_effective_route_table("xa", "vm-a").result()
    assert any(x.address_prefix == ["10.60.0.0/16"] and x.next_hop_type == "VNetPeering" for x in r.value)


def test_role_assignments_are_listed(operator, two_subscriptions):
    sub_a, _ = two_subscriptions
    got = operator.ok("GET", f"/subscriptions/{sub_a}/providers/Microsoft.Authorization/roleAssignments", api="2022-04-01")["value"]
    assert any(a["properties"]["roleDefinitionId"].endswith("4d97b98b-1d4f-4787-a291-c67834d212e7") for a in got)
    roles = operator.ok("GET", f"/subscriptions/{sub_a}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName%20eq%20'Reader'", api="2022-04-01")["value"]
    assert [r["properties"]["roleName"] for r in roles] == ["Reader"]


def test_lists_show_only_what_a_narrow_role_may_read(server, operator, two_subscriptions):
    sub_a, _ = two_subscriptions
    narrow = operator.principal("narrow")
    operator.assign(f"/subscriptions/{sub_a}/resourceGroups/xa", "Network Contributor", narrow)
    arm = Arm(server, narrow)
    # As in ARM: the subscription's lists hold only what the principal may read.
    groups = arm.ok("GET", f"/subscriptions/{sub_a}/resourcegroups")["value"]
    assert [g["name"] for g in groups] == ["xa"]
    net = network_client(server, narrow, sub_a)
    assert {v.name for v in net.virtual_networks.list_all()} == {"vnet-a"}
    # A single resource outside its group stays refused.
    r = arm.call("GET", f"/subscriptions/{sub_a}/resourcegroups/hub-spoke")
    assert r.status_code == 403 and r.json()["error"]["code"] == "AuthorizationFailed"
