"""Hub and spoke built with azure-mgmt-network 33.x, exactly as against Azure: models, LRO pollers
with the default polling interval, and Azure's refusals as HttpResponseError."""

import time

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.network import models as m

from conftest import net_id

RG = "hub-spoke"
LOC = "westeurope"


def vnet(net, name, prefixes, subnets=()):
    body = m.VirtualNetwork(
        location=LOC,
        address_space=m.AddressSpace(address_prefixes=list(prefixes)),
        subnets=[m.Subnet(name=n, address_prefix=p) for n, p in subnets],
    )
    return net.virtual_networks.begin_create_or_update(RG, name, body).result()


def peer(net, sub, local, remote, **flags):
    body = m.VirtualNetworkPeering(
        remote_virtual_network=m.SubResource(id=net_id(sub, RG, f"virtualNetworks/{remote}")),
        allow_virtual_network_access=True,
        **flags,
    )
    return net.virtual_network_peerings.begin_create_or_update(RG, local, f"{local}-to-{remote}", body).result()


def routes(net, nic):
    result = net.network_interfaces.begin_get_effective_route_table(RG, nic).result()
    return [(r.address_prefix[0], r.next_hop_type, r.state) for r in result.value]


@pytest.fixture(scope="module")
def hub(operator, sub, net):
    operator.group(sub, RG, LOC)
    v = vnet(net, "hub", ["10.0.0.0/16"], [("GatewaySubnet", "10.0.255.0/27"), ("shared", "10.0.1.0/24")])
    for i in (1, 2):
        vnet(net, f"spoke{i}", [f"10.{i}.0.0/16"], [("app", f"10.{i}.1.0/24")])
    return v


def test_vnets_and_subnets(net, hub):
    assert hub.provisioning_state == "Succeeded"
    assert {s.name for s in hub.subnets} == {"GatewaySubnet", "shared"}
    s = net.subnets.begin_create_or_update(RG, "hub", "extra", m.Subnet(address_prefix="10.0.2.0/24")).result()
    assert s.address_prefix == "10.0.2.0/24" and s.provisioning_state == "Succeeded"
    assert {x.name for x in net.subnets.list(RG, "hub")} == {"GatewaySubnet", "shared", "extra"}
    net.subnets.begin_delete(RG, "hub", "extra").result()
    with pytest.raises(ResourceNotFoundError):
        net.subnets.get(RG, "hub", "extra")
    names = {v.name for v in net.virtual_networks.list(RG)}
    assert {"hub", "spoke1", "spoke2"} <= names
    # Overlapping subnets are Azure's NetcfgSubnetRangesOverlap.
    with pytest.raises(HttpResponseError) as e:
        net.subnets.begin_create_or_update(RG, "hub", "clash", m.Subnet(address_prefix="10.0.1.128/25")).result()
    assert e.value.status_code == 400 and e.value.error.code == "NetcfgSubnetRangesOverlap"


def test_use_remote_gateways_without_a_gateway_is_refused(net, sub, hub):
    with pytest.raises(HttpResponseError) as e:
        peer(net, sub, "spoke1", "hub", use_remote_gateways=True)
    assert e.value.status_code == 400
    assert e.value.error.code == "RemoteVnetHasNoGateways"


def test_overlapping_address_spaces_cannot_peer(net, sub, hub):
    vnet(net, "overlap", ["10.0.128.0/17"])
    with pytest.raises(HttpResponseError) as e:
        peer(net, sub, "hub", "overlap")
    assert e.value.error.code == "VnetAddressSpacesOverlap"
    net.virtual_networks.begin_delete(RG, "overlap").result()


def test_vpn_gateway_through_the_lro_poller(net, sub, hub):
    pip = net.public_ip_addresses.begin_create_or_update(
        RG, "hub-gw-pip", m.PublicIPAddress(location=LOC, sku=m.PublicIPAddressSku(name="Standard"), public_ip_allocation_method="Static")
    ).result()
    assert pip.ip_address
    body = m.VirtualNetworkGateway(
        location=LOC,
        gateway_type="Vpn",
        vpn_type="RouteBased",
        sku=m.VirtualNetworkGatewaySku(name="VpnGw1", tier="VpnGw1"),
        ip_configurations=[m.VirtualNetworkGatewayIPConfiguration(
            name="default",
            subnet=m.SubResource(id=net_id(sub, RG, "virtualNetworks/hub/subnets/GatewaySubnet")),
            public_ip_address=m.SubResource(id=pip.id),
        )],
    )
    start = time.monotonic()
    poller = net.virtual_network_gateways.begin_create_or_update(RG, "hub-gw", body)
    assert poller.status().lower() in ("inprogress", "updating", "succeeded")
    gw = poller.result()
    elapsed = time.monotonic() - start
    assert gw.provisioning_state == "Succeeded"
    assert gw.bgp_settings.asn == 65515
    # Retry-After: 1 keeps the poller from waiting its default 30 s.
    assert elapsed < 10, f"the LRO took {elapsed:.1f} s"
    assert net.virtual_network_gateways.get(RG, "hub-gw").provisioning_state == "Succeeded"


def test_peerings_both_ways_with_gateway_transit(net, sub, hub):
    for i in (1, 2):
        s = f"spoke{i}"
        a = peer(net, sub, s, "hub", use_remote_gateways=True)
        assert a.peering_state == "Initiated"
        b = peer(net, sub, "hub", s, allow_gateway_transit=True)
        assert b.peering_state == "Connected"
        assert net.virtual_network_peerings.get(RG, s, f"{s}-to-hub").peering_state == "Connected"
    links = {p.name: p.peering_state for p in net.virtual_network_peerings.list(RG, "hub")}
    assert links == {"hub-to-spoke1": "Connected", "hub-to-spoke2": "Connected"}


def test_local_gateway_connection_and_shared_key(net, sub, hub):
    lng = net.local_network_gateways.begin_create_or_update(
        RG, "onprem", m.LocalNetworkGateway(location=LOC, gateway_ip_address="198.51.100.10",
                                            local_network_address_space=m.AddressSpace(address_prefixes=["192.168.0.0/16"]))
    ).result()
    assert lng.provisioning_state == "Succeeded"
    conn = net.virtual_network_gateway_connections.begin_create_or_update(
        RG, "hub-onprem", m.VirtualNetworkGatewayConnection(
            location=LOC, connection_type="IPsec", shared_key="first-Shared-key1",
            virtual_network_gateway1=m.VirtualNetworkGateway(id=net_id(sub, RG, "virtualNetworkGateways/hub-gw")),
            local_network_gateway2=m.LocalNetworkGateway(id=lng.id),
        )
    ).result()
    assert conn.provisioning_state == "Succeeded"
    assert conn.shared_key is None, "sharedKey is write-only"
    assert net.virtual_network_gateway_connections.get_shared_key(RG, "hub-onprem").value == "first-Shared-key1"
    net.virtual_network_gateway_connections.begin_set_shared_key(RG, "hub-onprem", m.ConnectionSharedKey(value="second-Shared-key2")).result()
    assert net.virtual_network_gateway_connections.get_shared_key(RG, "hub-onprem").value == "second-Shared-key2"
    net.virtual_network_gateway_connections.begin_reset_shared_key(RG, "hub-onprem", m.ConnectionResetSharedKey(key_length=32)).result()
    key = net.virtual_network_gateway_connections.get_shared_key(RG, "hub-onprem").value
    assert key != "second-Shared-key2" and len(key) == 32
    names = [c.name for c in net.virtual_network_gateway_connections.list(RG)]
    assert names == ["hub-onprem"]


def test_nic_effective_routes(net, sub, hub):
    for vn, sn, nic in (("hub", "shared", "hub-vm"), ("spoke1", "app", "spoke1-vm")):
        n = net.network_interfaces.begin_create_or_update(
            RG, nic, m.NetworkInterface(location=LOC, ip_configurations=[m.NetworkInterfaceIPConfiguration(
                name="ipconfig1", subnet=m.Subnet(id=net_id(sub, RG, f"virtualNetworks/{vn}/subnets/{sn}")))])
        ).result()
        assert n.ip_configurations[0].private_ip_address
    r = routes(net, "spoke1-vm")
    assert ("10.1.0.0/16", "VnetLocal", "Active") in r
    assert ("10.0.0.0/16", "VNetPeering", "Active") in r
    assert ("192.168.0.0/16", "VirtualNetworkGateway", "Active") in r, r
    assert not any(p == "10.2.0.0/16" for p, _, _ in r), "peering is not transitive"
    r = routes(net, "hub-vm")
    assert ("10.1.0.0/16", "VNetPeering", "Active") in r and ("10.2.0.0/16", "VNetPeering", "Active") in r


def test_gateway_route_queries(net, hub):
    learned = net.virtual_network_gateways.begin_get_learned_routes(RG, "hub-gw").result()
    assert any(r.network == "192.168.0.0/16" for r in learned.value)


def test_missing_resources_are_404(net):
    with pytest.raises(ResourceNotFoundError) as e:
        net.virtual_networks.get(RG, "does-not-exist")
    assert e.value.error.code == "ResourceNotFound"
