#!/usr/bin/env bash
# bench-dataplane.sh - vnet's data plane beside the kernel baselines, measured in one run.
#
# 1. the kernel baselines of ../shared/bench (veth pair, kernel router hop), TCP + ping only;
# 2. vnet: `vnet serve` (release build) in namespace bl-vnet-srv, VNets a (10.81/16, subnets
#    s1 s2) and b (10.82/16) peered, VMs made with `vnet vm create`:
#      same VNet   bla1 (a/s1) -> bla2 (a/s2)     compared with the veth pair
#      peered      bla1 (a/s1) -> blb1 (b/s1)     compared with the kernel router hop
#    iperf3 single TCP stream (RUNS x DUR s, median) and ping (RUNS x 100 at 0.01 s);
#    UDP packets per second: iperf3 -u -l $UDP_LEN (64-byte datagrams) -b 0 -w 2M, DUR s, RUNS
#    times, received pps (sent - lost) — through vnet and through a kernel veth pair / router
#    hop built here (bl-vnu-*), in the same run;
#    latency, interleaved over those kernel paths and vnet's two: ping (RTT_RUNS x 200 each,
#    median of every ping) and UDP request/response (crates/agent/examples/udp_rr);
# 3. the pure forwarder's decisions per second on one core (criterion, crates/fwd/benches).
# Prints each vnet figure beside its baseline as a ratio. Run as root from the repository root:
#   bash scripts/bench-dataplane.sh      (env: RUNS=3 DUR=10 RTT_RUNS=5 RR_COUNT=20000 ONLY_RTT=1
#                                         SHARED=../shared/bench VNET_BIN=… RR_BIN=…
#                                         SKIP_BASELINES=1 BASELINES_FROM=FILE SKIP_CRITERION=1)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}; DUR=${DUR:-10}
SHARED=${SHARED:-../shared/bench}
PORT=${PORT:-7391}
SRV=bl-vnet-srv
TMP=$(mktemp -d /tmp/bl-vnet.XXXXXX)
SERVER_PID=
IPERF_PIDS=()
VMS=(bla1 bla2 blb1)
UDP_LEN=${UDP_LEN:-64}
KNS=(bl-vnu-a bl-vnu-r bl-vnu-b bl-vnu-c)

cleanup() {
  set +e
  for p in "${IPERF_PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; fi
  for v in "${VMS[@]}"; do ip netns del "vm-$v" 2>/dev/null; done
  for n in "${KNS[@]}"; do ip netns del "$n" 2>/dev/null; done
  ip netns del $SRV 2>/dev/null
  rm -rf "$TMP"
}
trap cleanup EXIT

for t in iperf3 ping jq python3; do
  command -v $t >/dev/null || { echo "missing $t: apt-get install -y iperf3 iputils-ping jq python3" >&2; exit 1; }
done
if [ -z "${VNET_BIN:-}" ]; then
  cargo build --release -p vnet >&2
  VNET_BIN=$PWD/target/release/vnet
fi
if [ -z "${RR_BIN:-}" ]; then
  cargo build --release -p agent --example udp_rr >&2
  RR_BIN=$PWD/target/release/examples/udp_rr
fi

median() { python3 -c 'import sys,statistics; print(round(statistics.median(float(x) for x in sys.argv[1:]),4))' "$@"; }
ratio() { python3 -c "import sys; a,b=float('$1'),float('$2'); print(f'{a/b:.3f}' if b else 'n/a')"; }
wait_idle() { python3 - <<'PY'
import time
def snap():
    v = list(map(int, open('/proc/stat').readline().split()[1:9])); return sum(v), v[3] + v[4]
t0 = time.time()
while time.time() - t0 < 120:
    a = snap(); time.sleep(1); b = snap()
    if 1 - (b[1] - a[1]) / max(1, b[0] - a[0]) < 0.10: break
PY
}
field() { sed -n "s/.*-> $1.*median \([0-9.]*\).*/\1/p" "$2" | head -1; }

echo "# $(date -u +%FT%TZ) $(uname -r), $(nproc) CPUs; RUNS=$RUNS DUR=$DUR; loadavg $(cut -d" " -f1-3 /proc/loadavg); VNET_BUSY_POLL_US=${VNET_BUSY_POLL_US:-default}"
if [ -z "${SKIP_BASELINES:-}" ]; then
  echo "== kernel baselines ($SHARED/veth.sh, router.sh; TCP and ping)"
  RUNS=$RUNS DUR=$DUR ONLY=tcp bash "$SHARED/veth.sh" | tee "$TMP/veth.txt" | grep -- '->' || true
  RUNS=$RUNS DUR=$DUR ONLY=tcp bash "$SHARED/router.sh" | tee "$TMP/router.txt" | grep -- '->' || true
fi
# BASELINES_FROM=FILE: take the baseline figures from an earlier output of this script.
if [ -n "${BASELINES_FROM:-}" ]; then cp "$BASELINES_FROM" "$TMP/veth.txt"; cp "$BASELINES_FROM" "$TMP/router.txt"; fi
VETH_TCP=$(field "TCP veth throughput" "$TMP/veth.txt" 2>/dev/null || true)
VETH_RTT=$(field "ping veth RTT" "$TMP/veth.txt" 2>/dev/null || true)
RT_TCP=$(field "TCP router throughput" "$TMP/router.txt" 2>/dev/null || true)
RT_RTT=$(field "ping router RTT" "$TMP/router.txt" 2>/dev/null || true)

# udp_pps CLIENT_NS DEST -> sets PPS (median received pps over RUNS runs of DUR s)
udp_pps() {
  local ns=$1 dst=$2 v=() i j=$TMP/udp.json
  for i in $(seq 1 "$RUNS"); do
    wait_idle
    ip netns exec "$ns" iperf3 -c "$dst" -u -l "$UDP_LEN" -b 0 -w 2M -t "$DUR" -J > "$j"
    v+=($(jq '((.end.sum_received.packets-.end.sum_received.lost_packets)/.end.sum_received.seconds)|floor' "$j"))
  done
  PPS=$(median "${v[@]}"); PPS=${PPS%.*}
  echo "  UDP $UDP_LEN-byte datagrams $ns -> $dst, received pps per run: ${v[*]} -> median $PPS"
}

echo "== kernel UDP pps: veth pair bl-vnu-a -- bl-vnu-c, router hop bl-vnu-a -- bl-vnu-r -- bl-vnu-b"
for n in "${KNS[@]}"; do ip netns add "$n"; ip -n "$n" link set lo up; done
ip link add a0 netns bl-vnu-a type veth peer name r0 netns bl-vnu-r
ip link add b0 netns bl-vnu-b type veth peer name r1 netns bl-vnu-r
ip link add a1 netns bl-vnu-a type veth peer name c0 netns bl-vnu-c
ip -n bl-vnu-a addr add 198.18.1.1/24 dev a0; ip -n bl-vnu-a link set a0 up
ip -n bl-vnu-a addr add 198.18.3.1/24 dev a1; ip -n bl-vnu-a link set a1 up
ip -n bl-vnu-c addr add 198.18.3.2/24 dev c0; ip -n bl-vnu-c link set c0 up
ip -n bl-vnu-r addr add 198.18.1.254/24 dev r0; ip -n bl-vnu-r link set r0 up
ip -n bl-vnu-r addr add 198.18.2.254/24 dev r1; ip -n bl-vnu-r link set r1 up
ip -n bl-vnu-b addr add 198.18.2.1/24 dev b0; ip -n bl-vnu-b link set b0 up
ip -n bl-vnu-a route add 198.18.2.0/24 via 198.18.1.254
ip -n bl-vnu-b route add default via 198.18.2.254
ip netns exec bl-vnu-r sysctl -qw net.ipv4.ip_forward=1
for n in bl-vnu-b bl-vnu-c; do ip netns exec $n iperf3 -s >/dev/null 2>&1 & IPERF_PIDS+=($!); done
sleep 0.5
ip netns exec bl-vnu-a ping -c 2 -i 0.2 -q 198.18.2.1 >/dev/null
if [ -z "${ONLY_RTT:-}" ]; then
  udp_pps bl-vnu-a 198.18.3.2; VETH_PPS=$PPS
  udp_pps bl-vnu-a 198.18.2.1; RT_PPS=$PPS
fi

echo "== vnet: server in $SRV, VMs via vnet vm create"
ip netns add $SRV; ip -n $SRV link set lo up
# nsenter --net keeps the mount namespace (ip netns exec would not): the namespaces the agent
# bind-mounts under /run/netns must be visible to everyone.
nsenter --net=/run/netns/$SRV "$VNET_BIN" serve --insecure-http --listen 127.0.0.1:$PORT --data-dir "$TMP/data" > "$TMP/serve.log" 2>&1 &
SERVER_PID=$!
cli() { ip netns exec $SRV "$VNET_BIN" --server http://127.0.0.1:$PORT "$@"; }
for i in $(seq 1 50); do cli group list >/dev/null 2>&1 && break; sleep 0.1; done
cli group create -n bl -l westeurope >/dev/null
cli network vnet create -g bl -n a --address-prefixes 10.81.0.0/16 --subnet-name s1 --subnet-prefixes 10.81.1.0/24 >/dev/null
cli network vnet subnet create -g bl --vnet-name a -n s2 --address-prefixes 10.81.2.0/24 >/dev/null
cli network vnet create -g bl -n b --address-prefixes 10.82.0.0/16 --subnet-name s1 --subnet-prefixes 10.82.1.0/24 >/dev/null
cli network vnet peering create -g bl --vnet-name a -n a-b --remote-vnet b --allow-vnet-access >/dev/null
cli network vnet peering create -g bl --vnet-name b -n b-a --remote-vnet a --allow-vnet-access >/dev/null
cli vm create bla1 -g bl --vnet a --subnet s1 --private-ip 10.81.1.4 >/dev/null
cli vm create bla2 -g bl --vnet a --subnet s2 --private-ip 10.81.2.4 >/dev/null
cli vm create blb1 -g bl --vnet b --subnet s1 --private-ip 10.82.1.4 >/dev/null
for v in bla2 blb1; do ip netns exec vm-$v iperf3 -s >/dev/null 2>&1 & IPERF_PIDS+=($!); done
sleep 0.5
ip netns exec vm-bla1 ping -c 3 -i 0.2 -q 10.81.2.4 >/dev/null
ip netns exec vm-bla1 ping -c 3 -i 0.2 -q 10.82.1.4 >/dev/null

measure() { # LABEL DEST -> sets TCP RTT
  local label=$1 dst=$2 gb=() rt=() i
  for i in $(seq 1 "$RUNS"); do
    wait_idle
    ip netns exec vm-bla1 iperf3 -c "$dst" -t "$DUR" -J > "$TMP/$label-$i.json"
    gb+=($(jq '.end.sum_received.bits_per_second/1e9' "$TMP/$label-$i.json"))
  done
  for i in $(seq 1 "$RUNS"); do
    ip netns exec vm-bla1 ping -c 100 -i 0.01 -W 1 "$dst" > "$TMP/$label-ping.txt"
    rt+=($(sed -n 's/^rtt .* = [0-9.]*\/\([0-9.]*\)\/.*/\1/p' "$TMP/$label-ping.txt"))
  done
  TCP=$(median "${gb[@]}"); RTT=$(median "${rt[@]}")
  echo "  vnet $label: TCP Gbit/s per run: ${gb[*]} -> median $TCP; ping avg ms per run: ${rt[*]} -> median $RTT"
}
# Ping RTT, interleaved: the kernel veth pair and router hop built above and vnet's two paths
# take turns, RTT_RUNS rounds of 200 pings each, so that all four see the same machine state;
# the figure is the median of every single ping's time (percentiles beside it).
# The four latency paths, taking turns: client namespace, destination, label.
LAT_PATHS=("bl-vnu-a 198.18.3.2 kveth" "bl-vnu-a 198.18.2.1 krouter"
           "vm-bla1 10.81.2.4 vsame" "vm-bla1 10.82.1.4 vpeer")
rtt_interleaved() {
  local i k
  for i in $(seq 1 "${RTT_RUNS:-5}"); do
    for k in "${LAT_PATHS[@]}"; do
      set -- $k
      ip netns exec "$1" ping -c 200 -i 0.01 -W 1 "$2" | grep -o 'time=[0-9.]*' | cut -d= -f2 >> "$TMP/rtt-$3.txt"
    done
  done
  python3 - "$TMP" <<'PY'
import statistics, sys
d = sys.argv[1]
def load(k): return sorted(float(x) for x in open(f"{d}/rtt-{k}.txt"))
def pct(v, p): return v[min(len(v) - 1, int(p / 100 * len(v)))]
r = {k: load(k) for k in ("kveth", "krouter", "vsame", "vpeer")}
for k, label in (("kveth", "kernel veth pair"), ("krouter", "kernel router hop"),
                 ("vsame", "vnet same VNet"), ("vpeer", "vnet peered")):
    v = r[k]
    print(f"  {label:20s} n={len(v):5d} median {statistics.median(v):.4f} ms  p10 {pct(v,10):.4f}  p90 {pct(v,90):.4f}  mean {statistics.mean(v):.4f}")
m = {k: statistics.median(v) for k, v in r.items()}
av, ak = m["vpeer"] - m["kveth"], m["krouter"] - m["kveth"]
print(f"RTT_MEDIANS {m['kveth']:.4f} {m['krouter']:.4f} {m['vsame']:.4f} {m['vpeer']:.4f} {av:.4f} {ak:.4f}")
PY
}
echo "== ping RTT, interleaved (kernel veth, kernel router hop, vnet same VNet, vnet peered)"
rtt_interleaved | tee "$TMP/rtt.txt" | grep -v '^RTT_MEDIANS'
read -r IV_VETH IV_RT IV_SAME IV_PEER IV_ADD_V IV_ADD_K < <(sed -n 's/^RTT_MEDIANS //p' "$TMP/rtt.txt")
echo "  added RTT over the veth pair (medians): vnet peered $IV_ADD_V ms, kernel router hop $IV_ADD_K ms -> ratio $(ratio "$IV_ADD_V" "$IV_ADD_K")"

# UDP request/response (crates/agent/examples/udp_rr): the next request leaves as soon as the
# answer is in, so no CPU idles between exchanges; same four paths, interleaved.
echo "== UDP request/response, 1-byte datagrams, interleaved (RR_COUNT=${RR_COUNT:=20000} per round)"
for ns in bl-vnu-b bl-vnu-c vm-bla2 vm-blb1; do ip netns exec $ns "$RR_BIN" server 7390 & IPERF_PIDS+=($!); done
sleep 0.3
for i in $(seq 1 "${RTT_RUNS:-5}"); do
  for k in "${LAT_PATHS[@]}"; do
    set -- $k
    ip netns exec "$1" "$RR_BIN" client "$2:7390" "$RR_COUNT" | sed -n 's/.* median \([0-9.]*\) .*/\1/p' >> "$TMP/rr-$3.txt"
  done
done
for k in kveth krouter vsame vpeer; do
  eval "RR_$k=\$(median \$(cat \"$TMP/rr-$k.txt\"))"
  echo "  $k: median us per round: $(tr '\n' ' ' < "$TMP/rr-$k.txt")"
done
RR_ADD_V=$(python3 -c "print(round($RR_vpeer-$RR_kveth,2))"); RR_ADD_K=$(python3 -c "print(round($RR_krouter-$RR_kveth,2))")
echo "  added over the veth pair: vnet peered $RR_ADD_V us, kernel router hop $RR_ADD_K us -> ratio $(ratio "$RR_ADD_V" "$RR_ADD_K")"
if [ -n "${ONLY_RTT:-}" ]; then exit 0; fi

measure same-vnet 10.81.2.4; SAME_TCP=$TCP; SAME_RTT=$RTT
measure peered 10.82.1.4; PEER_TCP=$TCP; PEER_RTT=$RTT
udp_pps vm-bla1 10.81.2.4; SAME_PPS=$PPS
udp_pps vm-bla1 10.82.1.4; PEER_PPS=$PPS
cli vm list -o json | jq -c '.[] | {nic: (.nicId|split("/")|last), netns}' | sed 's/^/  /'
curl -s http://127.0.0.1:$PORT/vnet/v1/dataplane >/dev/null 2>&1 || true
ip netns exec $SRV python3 -c "
import json,urllib.request
d=json.load(urllib.request.urlopen('http://127.0.0.1:$PORT/vnet/v1/dataplane'))
for n in d['nics']: print('  counters', n['name'], json.dumps(n['counters']))"

FWD_PPS=
if [ -z "${SKIP_CRITERION:-}" ]; then
  echo "== pure forwarder (criterion, one core)"
  cargo bench -p fwd --bench forward -- --noplot 2>/dev/null | tee "$TMP/crit.txt" | grep -E "time:|thrpt:" || true
  FWD_PPS=$(sed -n 's/.*thrpt: *\[[0-9.]* [A-Za-z/]* \([0-9.]*\) \([KMG]\)elem\/s.*/\1 \2/p' "$TMP/crit.txt" | head -1)
fi

echo
echo "== results (vnet beside the kernel baselines of this run)"
printf '%-44s %12s %12s %8s\n' "figure" "vnet" "kernel" "ratio"
if [ -n "$VETH_TCP" ]; then
  printf '%-44s %12s %12s %8s\n' "TCP Gbit/s, same VNet vs veth pair" "$SAME_TCP" "$VETH_TCP" "$(ratio "$SAME_TCP" "$VETH_TCP")"
  printf '%-44s %12s %12s %8s\n' "TCP Gbit/s, peered vs kernel router hop" "$PEER_TCP" "$RT_TCP" "$(ratio "$PEER_TCP" "$RT_TCP")"
  printf '%-44s %12s %12s %8s\n' "ping RTT ms, same VNet vs veth pair" "$SAME_RTT" "$VETH_RTT" "$(ratio "$SAME_RTT" "$VETH_RTT")"
  printf '%-44s %12s %12s %8s\n' "ping RTT ms, peered vs kernel router hop" "$PEER_RTT" "$RT_RTT" "$(ratio "$PEER_RTT" "$RT_RTT")"
  printf '%-44s %12s %12s %8s\n' "UDP ${UDP_LEN} B pps, same VNet vs veth pair" "$SAME_PPS" "$VETH_PPS" "$(ratio "$SAME_PPS" "$VETH_PPS")"
  printf '%-44s %12s %12s %8s\n' "UDP ${UDP_LEN} B pps, peered vs kernel router hop" "$PEER_PPS" "$RT_PPS" "$(ratio "$PEER_PPS" "$RT_PPS")"
  printf '%-44s %12s %12s %8s\n' "ping RTT ms interleaved medians, same VNet/veth" "$IV_SAME" "$IV_VETH" "$(ratio "$IV_SAME" "$IV_VETH")"
  printf '%-44s %12s %12s %8s\n' "ping RTT ms interleaved medians, peered/router" "$IV_PEER" "$IV_RT" "$(ratio "$IV_PEER" "$IV_RT")"
  printf '%-44s %12s %12s %8s\n' "added ping RTT ms (interleaved medians)" "$IV_ADD_V" "$IV_ADD_K" "$(ratio "$IV_ADD_V" "$IV_ADD_K")"
  printf '%-44s %12s %12s %8s\n' "UDP RR us, peered vs router hop" "$RR_vpeer" "$RR_krouter" "$(ratio "$RR_vpeer" "$RR_krouter")"
  printf '%-44s %12s %12s %8s\n' "added UDP RR us over the veth pair" "$RR_ADD_V" "$RR_ADD_K" "$(ratio "$RR_ADD_V" "$RR_ADD_K")"
  ADD_V=$(python3 -c "print(round($PEER_RTT-$VETH_RTT,4))"); ADD_K=$(python3 -c "print(round($RT_RTT-$VETH_RTT,4))")
  printf '%-44s %12s %12s %8s\n' "added RTT ms over the veth pair" "$ADD_V" "$ADD_K" "$(ratio "$ADD_V" "$ADD_K")"
  echo "goals: peered TCP >= 0.5 x router hop: $(python3 -c "print('met' if $PEER_TCP >= 0.5*$RT_TCP else 'NOT met')");" \
       "added RTT <= 2 x kernel hop's: $(python3 -c "print('met' if $ADD_V <= 2*max($ADD_K,0) else 'NOT met')") (shared-bench ping averages)," \
       "$(python3 -c "print('met' if $IV_ADD_V <= 2*max($IV_ADD_K,0) else 'NOT met')") (interleaved ping medians)," \
       "$(python3 -c "print('met' if $RR_ADD_V <= 2*max($RR_ADD_K,0) else 'NOT met')") (UDP RR)"
else
  printf '%-44s %12s\n' "TCP Gbit/s, same VNet" "$SAME_TCP"; printf '%-44s %12s\n' "TCP Gbit/s, peered" "$PEER_TCP"
  printf '%-44s %12s\n' "ping RTT ms, same VNet" "$SAME_RTT"; printf '%-44s %12s\n' "ping RTT ms, peered" "$PEER_RTT"
  printf '%-44s %12s %12s %8s\n' "UDP ${UDP_LEN} B pps, same VNet vs veth pair" "$SAME_PPS" "$VETH_PPS" "$(ratio "$SAME_PPS" "$VETH_PPS")"
  printf '%-44s %12s %12s %8s\n' "UDP ${UDP_LEN} B pps, peered vs kernel router hop" "$PEER_PPS" "$RT_PPS" "$(ratio "$PEER_PPS" "$RT_PPS")"
fi
echo "# loadavg at the end: $(cut -d" " -f1-3 /proc/loadavg)"
[ -n "$FWD_PPS" ] && printf '%-44s %12s\n' "forwarder decisions/s, one core (pure)" "$FWD_PPS"
exit 0
