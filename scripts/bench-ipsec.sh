#!/usr/bin/env bash
# bench-ipsec.sh - a vnet-to-vnet IPsec tunnel (`vnet ipsec up` on both ends, release build):
# TCP single stream and ping through it, beside strongSwan's figures on this machine
# (../shared/bench/results/strongswan.txt, measured by ../shared/bench/strongswan.sh).
#
#   bl-vi-a: 198.18.70.1 (veth) + 10.1.0.1 (lo)  ==== ESP in UDP 4500 ====  bl-vi-b: 198.18.70.2 + 10.2.0.1
#   iperf3 / ping run between 10.1.0.1 and 10.2.0.1, so every packet crosses both endpoints
#   (encrypted by one `vnet ipsec up`, decrypted by the other). strongSwan's bench also routes
#   through two extra host namespaces; here the traffic starts on the gateways themselves.
# Usage (root, repository root): bash scripts/bench-ipsec.sh   env: RUNS=3 DUR=10 VNET_BIN=…
#   PROPOSALS="aes128gcm16-prfsha256-ecp256/aes128gcm16 …"
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}; DUR=${DUR:-10}
PROPOSALS=${PROPOSALS:-"aes128gcm16-prfsha256-ecp256/aes128gcm16 aes256gcm16-prfsha256-ecp256/aes256gcm16 aes256-sha256-modp2048/aes256-sha256 chacha20poly1305-prfsha256-x25519/chacha20poly1305"}
A=bl-vi-a B=bl-vi-b
TMP=$(mktemp -d /tmp/bl-vi.XXXXXX)
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT
if [ -z "${VNET_BIN:-}" ]; then cargo build --release -p vnet >&2; VNET_BIN=$PWD/target/release/vnet; fi
median() { python3 -c 'import sys,statistics; print(round(statistics.median(float(x) for x in sys.argv[1:]),3))' "$@"; }

ip netns add $A; ip netns add $B
ip link add bl-vi-x netns $A type veth peer name bl-vi-y netns $B
ip -n $A addr add 198.18.70.1/24 dev bl-vi-x; ip -n $B addr add 198.18.70.2/24 dev bl-vi-y
for n in $A $B; do ip -n $n link set lo up; done
ip -n $A link set bl-vi-x up; ip -n $B link set bl-vi-y up
ip -n $A addr add 10.1.0.1/32 dev lo; ip -n $B addr add 10.2.0.1/32 dev lo
head -c 32 /dev/urandom | base64 > "$TMP/psk"

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs; RUNS=$RUNS DUR=$DUR; loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
for pp in $PROPOSALS; do
  ike=${pp%/*} esp=${pp#*/}
  ip netns exec $B "$VNET_BIN" ipsec up --responder --local 198.18.70.2 --remote 198.18.70.1 --psk-file "$TMP/psk" \
    --local-ts 10.2.0.0/16 --remote-ts 10.1.0.0/16 --ike-proposals "$ike" --esp-proposals "$esp" --tun bl-vi-t > "$TMP/b.out" 2>&1 &
  PB=$!; PIDS+=($PB)
  sleep 0.3
  ip netns exec $A "$VNET_BIN" ipsec up --initiator --local 198.18.70.1 --remote 198.18.70.2 --psk-file "$TMP/psk" \
    --local-ts 10.1.0.0/16 --remote-ts 10.2.0.0/16 --ike-proposals "$ike" --esp-proposals "$esp" --tun bl-vi-t > "$TMP/a.out" 2>&1 &
  PA=$!; PIDS+=($PA)
  for _ in $(seq 100); do grep -q 'CHILD_SA INSTALLED' "$TMP/a.out" && grep -q 'CHILD_SA INSTALLED' "$TMP/b.out" && break; sleep 0.1; done
  ip netns exec $B iperf3 -s -B 10.2.0.1 >/dev/null 2>&1 & PS=$!; PIDS+=($PS)
  sleep 0.3
  tcp=() rtt=() cpu_a=() cpu_b=() retr=()
  for i in $(seq 1 "$RUNS"); do
    ta0=$(awk '{print $14+$15}' /proc/$PA/stat); tb0=$(awk '{print $14+$15}' /proc/$PB/stat)
    ip netns exec $A iperf3 -c 10.2.0.1 -B 10.1.0.1 -t "$DUR" -J > "$TMP/iperf.json"
    ta1=$(awk '{print $14+$15}' /proc/$PA/stat); tb1=$(awk '{print $14+$15}' /proc/$PB/stat)
    tcp+=($(python3 -c "import json;print(round(json.load(open('$TMP/iperf.json'))['end']['sum_received']['bits_per_second']/1e6,1))"))
    retr+=($(python3 -c "import json;print(json.load(open('$TMP/iperf.json'))['end']['sum_sent'].get('retransmits',0))"))
    hz=$(getconf CLK_TCK)
    cpu_a+=($(python3 -c "print(round(($ta1-$ta0)/$hz/$DUR*100,1))")); cpu_b+=($(python3 -c "print(round(($tb1-$tb0)/$hz/$DUR*100,1))"))
  done
  for i in $(seq 1 "$RUNS"); do
    rtt+=($(ip netns exec $A ping -c 100 -i 0.01 -W 1 -I 10.1.0.1 10.2.0.1 | sed -n 's/^rtt .* = [0-9.]*\/\([0-9.]*\)\/.*/\1/p'))
  done
  suite=$(grep -m1 'CHILD_SA INSTALLED' "$TMP/a.out" | cut -d' ' -f5)
  echo "  [$ike / $esp -> $suite] TCP Mbit/s per run: ${tcp[*]} -> median $(median "${tcp[@]}") (retransmits ${retr[*]});" \
       "CPU % of one core: sender $(median "${cpu_a[@]}"), receiver $(median "${cpu_b[@]}");" \
       "ping avg ms per run: ${rtt[*]} -> median $(median "${rtt[@]}")"
  kill $PS $PA $PB 2>/dev/null; wait $PS $PA $PB 2>/dev/null || true
  PIDS=()
  sleep 0.5
done
echo "strongSwan 5.9.8 (kernel-libipsec) on this machine, from ../shared/bench/results/strongswan.txt:"
grep -E -- '-> (TCP|ping) \[' ../shared/bench/results/strongswan.txt 2>/dev/null | sed 's/^/  /' || echo "  (not found)"
