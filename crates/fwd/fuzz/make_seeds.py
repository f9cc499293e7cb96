#!/usr/bin/env python3
"""Writes hand-made seeds for the `process` fuzz target into corpus/process/: for every
ingress NIC, ICMP within and across VNets, a non-DF packet above the 1280-byte hop (fragment),
the same with DF (frag-needed), a TCP GSO super-packet, UDP with an offloaded checksum, TTL 1,
and IPv6 (plain and hop limit 1). Input layout: see fwd::fuzzing::process_target."""
import ipaddress, os, struct

def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF

def v4(src, dst, proto, payload, df=True, ttl=64):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0x4000 if df else 0, ttl,
                    proto, 0, ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:] + payload

def icmp(n):
    p = struct.pack("!BBHHH", 8, 0, 0, 1, 1) + bytes(i % 256 for i in range(n))
    return p[:2] + struct.pack("!H", csum(p)) + p[4:]

def v6(dst, payload, hl=64):
    return (struct.pack("!IHBB", 6 << 28, len(payload), 58, hl)
            + ipaddress.IPv6Address("fd00:1:0:1::4").packed + ipaddress.IPv6Address(dst).packed + payload)

tcp = struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 0x50, 0x10, 65535, 0, 0) + bytes(8000)
udp = struct.pack("!HHHH", 1, 2, 8 + 1400, 0) + bytes(1400)
echo6 = bytes([128, 0, 0, 0, 0, 1, 0, 1])
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "process")
os.makedirs(out, exist_ok=True)
n = 0
for ing in range(10):
    for hdr, pkt in [
        (bytes([ing, 0, 0, 0, 0, 0]), v4("10.1.1.4", "10.2.1.4", 1, icmp(56))),
        (bytes([ing, 0, 0, 0, 0, 0]), v4("10.1.1.4", "10.2.2.4", 1, icmp(1400), df=False)),
        (bytes([ing, 0, 0, 0, 0, 0]), v4("10.1.1.4", "10.2.2.4", 1, icmp(1400))),
        (bytes([ing, 0xB4, 0x05, 20, 0, 16]), v4("10.1.1.4", "10.1.2.4", 6, tcp)),
        (bytes([ing, 0, 0, 20, 0, 6]), v4("10.1.1.4", "10.2.2.4", 17, udp, df=False)),
        (bytes([ing, 0, 0, 0, 0, 0]), v4("10.1.1.4", "10.2.1.4", 1, icmp(56), ttl=1)),
        (bytes([ing, 0, 0, 0, 0, 0]), v6("fd00:2:0:1::4", echo6 + bytes(56))),
        (bytes([ing, 0, 0, 0, 0, 0]), v6("fd00:2:0:1::4", echo6 + bytes(1400), hl=1)),
    ]:
        with open(os.path.join(out, f"seed-{n:03d}"), "wb") as f:
            f.write(hdr + pkt)
        n += 1
print(f"{n} seeds in {out}")
