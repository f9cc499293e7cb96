#!/usr/bin/env bash
# Interop of `vnet ipsec up` with strongSwan (charon + kernel-libipsec) in network namespaces.
# Usage: strongswan.sh [VNET_BINARY]   (as root; needs strongswan-charon, strongswan-swanctl,
# libcharon-extra-plugins, libstrongswan-extra-plugins, iperf3, tshark). Prints one line per
# case and "N passed, M failed"; exits non-zero if any case failed.
#
# Cases:
#  - 4 proposals x our side initiator/responder: CHILD_SA up, ping, TCP (iperf3) both ways;
#    the whole matrix is captured on the underlay and dissected by tshark afterwards (IKE
#    and ESP decrypted with the keys `--print-keys-for-tshark` prints): no malformed packets.
#  - rekeys under a continuous 20 pps ping, one proposal (aes128gcm16-prfsha256-x25519):
#    driven by us (--child-rekey/--ike-rekey), then driven by strongSwan (rekey_time).
#  - DPD, one proposal (aes256gcm16-prfsha256-ecp256): charon killed -> we notice; we are
#    killed -> charon's DPD clears its SAs.
#  - wrong PSK, both roles: refused cleanly on both sides.
#  - inner addresses (CP), both roles: strongSwan asks our --pool for one (vips = 0.0.0.0),
#    we ask strongSwan's pool (--request-vip); ping from the inner address.
#  - certificates (ECDSA P-256 from a CA made here with openssl), both roles: each side proves
#    itself with its certificate, checks the other's against the CA and its DN, ping both
#    ways; then a certificate with the right name from another CA is refused, ours by charon
#    and strongSwan's by us.
# Environment: IKE_INTEROP_PREFIX (namespace/link name prefix, default ikei<pid>),
# IKE_INTEROP_CASES (space-separated subset of: matrix rekey dpd psk cert vip; default all),
# IKE_INTEROP_KEEP=1 keeps the work directory (logs, capture, dissection) for a look.
set -u
VNET=${1:-target/debug/vnet}
VNET=$(readlink -f "$VNET")
P=${IKE_INTEROP_PREFIX:-ikei$$}   # unique prefix for namespaces and links (<= 10 chars)
CASES=${IKE_INTEROP_CASES:-matrix rekey dpd psk cert vip}
NS_A=${P}a NS_B=${P}b
A=198.18.50.1 B=198.18.50.2
DIR=$(mktemp -d /tmp/${P}.XXXX)
pass=0 fail=0
CHARON_PID= VNET_PID= TSHARK_PID= IPERF_PID=

cleanup() {
  [ -n "$TSHARK_PID" ] && kill "$TSHARK_PID" 2>/dev/null
  [ -n "$CHARON_PID" ] && kill -9 "$CHARON_PID" 2>/dev/null
  [ -n "$VNET_PID" ] && kill -9 "$VNET_PID" 2>/dev/null
  [ -n "$IPERF_PID" ] && kill -9 "$IPERF_PID" 2>/dev/null
  ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_B" 2>/dev/null
  if [ -n "${IKE_INTEROP_KEEP:-}" ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

setup_net() {
  ip netns add "$NS_A"; ip netns add "$NS_B"
  ip link add ${P}x type veth peer name ${P}y
  ip link set ${P}x netns "$NS_A"; ip link set ${P}y netns "$NS_B"
  ip -n "$NS_A" addr add $A/24 dev ${P}x; ip -n "$NS_B" addr add $B/24 dev ${P}y
  for n in "$NS_A" "$NS_B"; do ip -n "$n" link set lo up; done
  ip -n "$NS_A" link set ${P}x up; ip -n "$NS_B" link set ${P}y up
  ip -n "$NS_A" addr add 10.1.0.1/32 dev lo
  ip -n "$NS_B" addr add 10.2.0.1/32 dev lo
}

# $1 ike proposals, $2 esp proposals, $3 psk; optional CONN_EXTRA / CHILD_EXTRA lines.
start_charon() {
  cat > "$DIR/strongswan.conf" <<CONF
charon {
  load = random nonce openssl aes sha1 sha2 hmac kdf gmp curve25519 gcm chapoly pem pkcs1 pkcs8 x509 pubkey constraints kernel-libipsec kernel-netlink socket-default vici updown
  retransmit_tries = 3
  retransmit_timeout = 0.5
  retransmit_base = 1.5
  filelog { stderr { default = 1
                     ike = 2 } }
  plugins { vici { socket = unix://$DIR/charon.vici } }
}
CONF
  cat > "$DIR/swanctl.conf" <<CONF
connections {
  vnet {
    version = 2
    local_addrs = $B
    remote_addrs = $A
    proposals = $1
    encap = yes
    ${CONN_EXTRA:-}
    ${AUTH_BLOCKS:-local { auth = psk
            id = $B \}
    remote { auth = psk
             id = $A \}}
    children { vnet { ${CHILD_TS:-local_ts = 10.2.0.0/16
                      remote_ts = 10.1.0.0/16}
                      ${CHILD_EXTRA:-}
                      esp_proposals = $2 } }
  }
}
${POOLS_BLOCK:-}
secrets { ike-vnet { id-1 = $A
                     id-2 = $B
                     secret = "$3" } }
CONF
  : > "$DIR/charon.log"; rm -f "$DIR/charon.vici"
  ip netns exec "$NS_B" unshare -m sh -c "mount -t tmpfs none /run && STRONGSWAN_CONF=$DIR/strongswan.conf exec /usr/lib/ipsec/charon" >"$DIR/charon.log" 2>&1 &
  CHARON_PID=$!
  for _ in $(seq 50); do [ -S "$DIR/charon.vici" ] && break; sleep 0.1; done
  sw --load-all --file "$DIR/swanctl.conf" >"$DIR/load.out" 2>&1 || cat "$DIR/load.out"
}
sw() { ip netns exec "$NS_B" swanctl "$@" --uri "unix://$DIR/charon.vici"; }
stop_charon() { [ -n "$CHARON_PID" ] && kill "$CHARON_PID" 2>/dev/null; wait "$CHARON_PID" 2>/dev/null; CHARON_PID=; }
stop_vnet() { [ -n "$VNET_PID" ] && kill "$VNET_PID" 2>/dev/null; wait "$VNET_PID" 2>/dev/null; VNET_PID=; }

ok() { echo "PASS $*"; pass=$((pass+1)); }
ko() { echo "FAIL $*"; fail=$((fail+1)); echo "--- vnet:"; grep -v TSHARK_ "$DIR/vnet.out"; echo "--- charon:"; tail -40 "$DIR/charon.log"; }

# Starts charon and us and waits for the CHILD_SA on both sides. $1 ike, $2 esp, $3 our
# role; further arguments go to `vnet ipsec up`. Returns non-zero if no CHILD_SA.
bring_up() {
  local ike=$1 esp=$2 role=$3; shift 3
  local psk="interop-$RANDOM"
  printf '%s\n' "$psk" > "$DIR/psk"
  start_charon "$ike" "$esp" "$psk"
  ip netns exec "$NS_A" "$VNET" ipsec up --local $A --remote $B ${AUTH_ARGS:---psk-file $DIR/psk} \
     ${OUR_TS:---local-ts 10.1.0.0/16 --remote-ts 10.2.0.0/16} --ike-proposals "$ike" --esp-proposals "$esp" \
     --$role --tun ${P}t "$@" >"$DIR/vnet.out" 2>&1 &
  VNET_PID=$!
  sleep 0.3
  [ "$role" = responder ] && sw --initiate --child vnet --timeout 10 >/dev/null 2>&1
  local up=0
  for _ in $(seq 100); do
    grep -q 'CHILD_SA INSTALLED' "$DIR/vnet.out" && up=1 && break
    kill -0 "$VNET_PID" 2>/dev/null || break   # we gave up (refused): no need to wait
    sleep 0.1
  done
  [ $up = 1 ] || return 1
  for _ in $(seq 20); do sw --list-sas 2>/dev/null | grep -q INSTALLED && sleep 0.3 && return 0; sleep 0.1; done
  return 1
}

# TCP through the tunnel with iperf3: server in $1's namespace on $2, client from $3's
# namespace bound to $4. Prints the receiver's rate; non-zero on failure.
PORT=5201   # inside our own namespaces: no clash with anything else
tcp_once() {
  local srv_ns=$1 srv=$2 cli_ns=$3 cli=$4
  ip netns exec "$srv_ns" iperf3 -s -1 -B "$srv" -p "$PORT" >"$DIR/iperf_s.out" 2>&1 &
  local spid=$!; IPERF_PID=$spid
  sleep 0.3
  local rc=1
  if ip netns exec "$cli_ns" timeout 15 iperf3 -c "$srv" -B "$cli" -p "$PORT" -n 1M -f m \
       --connect-timeout 3000 >"$DIR/iperf_c.out" 2>&1; then
    rc=0
    grep receiver "$DIR/iperf_c.out" | awk '{ printf "%s %s", $7, $8 }'
  fi
  kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; IPERF_PID=
  return $rc
}

matrix_case() { # $1 ike, $2 esp, $3 our role
  local ike=$1 esp=$2 role=$3 what="$1 / $2, vnet $3" t0; t0=$(now)
  # One responder case goes through the stateless COOKIE front end (RFC 7296 §2.6).
  local extra=()
  [ "$role" = responder ] && [ "$ike" = aes128gcm16-prfsha256-x25519 ] && extra=(--cookie-threshold 0) && what="$what, COOKIE"
  if ! bring_up "$ike" "$esp" "$role" --dpd 10 --print-keys-for-tshark "${extra[@]}"; then
    ko "$what: no CHILD_SA"; stop_vnet; stop_charon; return
  fi
  if [ ${#extra[@]} -gt 0 ] && ! grep -q 'N(COOKIE)' "$DIR/charon.log"; then
    ko "$what: charon never saw our COOKIE"; stop_vnet; stop_charon; return
  fi
  grep TSHARK_ESP_SA "$DIR/vnet.out" | cut -d' ' -f2- >> "$DIR/esp_sa"
  grep TSHARK_IKEV2_SA "$DIR/vnet.out" | cut -d' ' -f2- >> "$DIR/ike_sa"
  local res="" bad=""
  if ip netns exec "$NS_A" ping -c 3 -i 0.2 -W 2 -I 10.1.0.1 10.2.0.1 >/dev/null 2>&1 \
     && ip netns exec "$NS_B" ping -c 3 -i 0.2 -W 2 -I 10.2.0.1 10.1.0.1 >/dev/null 2>&1; then
    res="ping both ways"
  else bad="ping failed"; fi
  local r
  if r=$(tcp_once "$NS_B" 10.2.0.1 "$NS_A" 10.1.0.1); then res="$res, TCP ours->strongSwan $r"
  else bad="$bad TCP ours->strongSwan failed: $(tail -3 "$DIR/iperf_c.out" | tr '\n' ' ')"; fi
  if r=$(tcp_once "$NS_A" 10.1.0.1 "$NS_B" 10.2.0.1); then res="$res, TCP strongSwan->ours $r"
  else bad="$bad TCP strongSwan->ours failed: $(tail -3 "$DIR/iperf_c.out" | tr '\n' ' ')"; fi
  local suite; suite=$(grep -m1 'CHILD_SA INSTALLED' "$DIR/vnet.out" | cut -d' ' -f5)
  if [ -z "$bad" ]; then ok "$what: $suite, $res ($(since "$t0")s)"; else ko "$what: $bad"; fi
  stop_vnet; stop_charon
}

run_matrix() {
  : > "$DIR/esp_sa"; : > "$DIR/ike_sa"
  ip netns exec "$NS_A" tshark -q -i ${P}x -f udp -w "$DIR/cap.pcapng" >"$DIR/tshark_cap.out" 2>&1 &
  TSHARK_PID=$!
  for _ in $(seq 100); do grep -q Capturing "$DIR/tshark_cap.out" && break; sleep 0.1; done
  for role in initiator responder; do
    matrix_case aes256gcm16-prfsha256-ecp256 aes256gcm16 $role
    matrix_case aes128gcm16-prfsha256-x25519 aes128gcm16 $role
    matrix_case aes256-sha256-modp2048 aes256-sha256 $role
    matrix_case aes256-sha1-modp1024 aes256-sha1 $role
  done
  sleep 0.5
  kill -INT "$TSHARK_PID" 2>/dev/null; wait "$TSHARK_PID" 2>/dev/null; TSHARK_PID=
  # Dissect everything with the IKE and ESP keys we printed (SK payloads and ESP decrypted,
  # IKE integrity and ESP ICVs checked).
  # (TCP reassembly off: iperf3's own retransmissions are not ours to judge. iperf3's
  # random payload is decoded as plain data: otherwise tshark's heuristic dissectors guess
  # at it — a CI run once saw Thrift "errors" inside correctly decrypted TCP segments.)
  local opts=(-o esp.enable_encryption_decode:TRUE -o esp.enable_authentication_check:TRUE
              -o tcp.desegment_tcp_streams:FALSE -d "tcp.port==$PORT,data")
  local t; t=$(now)
  while IFS= read -r row; do opts+=(-o "uat:esp_sa:$row"); done < "$DIR/esp_sa"
  while IFS= read -r row; do opts+=(-o "uat:ikev2_decryption_table:$row"); done < "$DIR/ike_sa"
  tshark -r "$DIR/cap.pcapng" -V "${opts[@]}" 2>&1 >"$DIR/dissect.txt" \
    | grep -v '^Running as user' >"$DIR/dissect.err"
  local frames isakmp esp icmp tcp errs
  frames=$(grep -c '^Frame [0-9]*:' "$DIR/dissect.txt")
  isakmp=$(grep -c '^Internet Security Association and Key Management Protocol' "$DIR/dissect.txt")
  esp=$(grep -c '^Encapsulating Security Payload' "$DIR/dissect.txt")
  icmp=$(grep -c '^Internet Control Message Protocol' "$DIR/dissect.txt")
  tcp=$(grep -c '^Transmission Control Protocol' "$DIR/dissect.txt")
  local encrypted decrypted
  encrypted=$(grep -c 'Payload: Encrypted and Authenticated (46)' "$DIR/dissect.txt")
  decrypted=$(awk '/^Frame [0-9]+:/ { ike = 0 } /^Internet Security Association/ { ike = 1 }
                  ike && /Decrypted Data/ { n++ } END { print n + 0 }' "$DIR/dissect.txt")
  local ikeauth; ikeauth=$(grep -c 'Payload: Authentication (39)' "$DIR/dissect.txt")
  errs=$(grep -cE 'Malformed|\[Expert Info \(Error|incorrect|Dissector bug' "$DIR/dissect.txt")
  local sas ikes; sas=$(wc -l < "$DIR/esp_sa"); ikes=$(wc -l < "$DIR/ike_sa")
  echo "  (tshark dissection: $(since "$t")s)"
  # Every ESP packet carries ICMP or TCP once decrypted.
  if [ "$frames" -gt 0 ] && [ "$isakmp" -ge 32 ] && [ "$esp" -gt 0 ] && [ "$errs" -eq 0 ] \
     && [ "$encrypted" -ge 16 ] && [ "$decrypted" -eq "$encrypted" ] && [ "$ikeauth" -ge 16 ] \
     && [ "$icmp" -ge 96 ] && [ $((icmp + tcp)) -ge "$esp" ] && [ ! -s "$DIR/dissect.err" ]; then
    ok "tshark: $frames frames, $isakmp ISAKMP ($decrypted of $encrypted SK payloads decrypted, $ikeauth AUTH payloads seen, $ikes IKE SA keys), $esp ESP decrypted with $sas SA keys ($icmp ICMP, $tcp TCP inside), no malformed/error"
  else
    echo "FAIL tshark: frames=$frames isakmp=$isakmp sk=$decrypted/$encrypted auth=$ikeauth esp=$esp icmp=$icmp tcp=$tcp errors=$errs"
    fail=$((fail+1))
    grep -nE -B30 'Malformed|\[Expert Info \(Error|incorrect|Dissector bug' "$DIR/dissect.txt" | head -80
    head -20 "$DIR/dissect.err"
  fi
}

# Continuous ping while SAs are rekeyed; $1 = who drives the rekeys (vnet|strongswan).
rekey_case() {
  local driver=$1 ike=aes128gcm16-prfsha256-x25519 esp=aes128gcm16 role args=()
  if [ "$driver" = vnet ]; then
    role=initiator; args=(--child-rekey 4 --ike-rekey 9); CONN_EXTRA= CHILD_EXTRA=
  else
    role=responder
    CONN_EXTRA="rekey_time = 9s
    over_time = 30s
    rand_time = 0s"
    CHILD_EXTRA="rekey_time = 4s
                      life_time = 60s
                      rand_time = 0s"
  fi
  local what="rekey driven by $driver ($ike / $esp, vnet $role)"
  if ! bring_up "$ike" "$esp" "$role" "${args[@]}"; then
    ko "$what: no CHILD_SA"; CONN_EXTRA= CHILD_EXTRA=; stop_vnet; stop_charon; return
  fi
  CONN_EXTRA= CHILD_EXTRA=
  local out tx rx lost
  out=$(ip netns exec "$NS_A" ping -q -c 280 -i 0.05 -W 1 -I 10.1.0.1 10.2.0.1 2>&1)
  tx=$(echo "$out" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
  rx=$(echo "$out" | sed -n 's/.* \([0-9]*\) received.*/\1/p')
  lost=$(( ${tx:-0} - ${rx:-0} ))
  local child ikerk
  child=$(( $(grep -c 'CHILD_SA INSTALLED' "$DIR/vnet.out") - 1 ))
  ikerk=$(grep -c 'IKE_SA REKEYED' "$DIR/vnet.out")
  local lt="our --child-rekey 4 --ike-rekey 9"
  [ "$driver" = strongswan ] && lt="strongSwan child rekey_time=4s, IKE rekey_time=9s"
  if [ "${tx:-0}" -gt 0 ] && [ "$lost" -le 5 ] && [ "$child" -ge 2 ] && [ "$ikerk" -ge 1 ] \
     && ! grep -q 'IKE_SA CLOSED' "$DIR/vnet.out"; then
    ok "$what, $lt: $child CHILD_SA rekeys, $ikerk IKE rekey, ping 20/s: $lost of $tx lost"
  else
    ko "$what, $lt: child rekeys=$child ike rekeys=$ikerk lost=$lost of ${tx:-0}"
  fi
  stop_vnet; stop_charon
}

dpd_case() { # $1 = who dies (strongswan|vnet)
  local dead=$1 ike=aes256gcm16-prfsha256-ecp256 esp=aes256gcm16
  if [ "$dead" = strongswan ]; then
    local what="DPD, charon killed, our --dpd 2 --retransmit-timeout-ms 500 --retransmit-tries 3"
    if ! bring_up $ike $esp initiator --dpd 2 --retransmit-timeout-ms 500 --retransmit-tries 3; then
      ko "$what: no CHILD_SA"; stop_vnet; stop_charon; return
    fi
    ip netns exec "$NS_A" ping -c 2 -i 0.2 -W 2 -I 10.1.0.1 10.2.0.1 >/dev/null 2>&1
    local t0; t0=$(now)
    kill -9 "$CHARON_PID"; wait "$CHARON_PID" 2>/dev/null; CHARON_PID=
    local gone=0
    for _ in $(seq 250); do kill -0 "$VNET_PID" 2>/dev/null || { gone=1; break; }; sleep 0.1; done
    local dt; dt=$(since "$t0")
    wait "$VNET_PID" 2>/dev/null; local rc=$?; VNET_PID=
    if [ $gone = 1 ] && [ $rc -ne 0 ] && grep -q 'dead peer' "$DIR/vnet.out" \
       && ! ip -n "$NS_A" link show ${P}t >/dev/null 2>&1; then
      ok "$what: peer declared dead and tunnel torn down ${dt}s after kill -9 (exit $rc: $(grep -m1 -o 'dead peer[^"]*' "$DIR/vnet.out"))"
    else
      ko "$what: gone=$gone rc=$rc after ${dt}s"; stop_vnet
    fi
  else
    local what="DPD, vnet killed, charon dpd_delay=2s retransmit 0.5s x1.5 x3"
    CONN_EXTRA="dpd_delay = 2s" CHILD_EXTRA="dpd_action = clear"
    if ! bring_up $ike $esp initiator; then
      CONN_EXTRA= CHILD_EXTRA=; ko "$what: no CHILD_SA"; stop_vnet; stop_charon; return
    fi
    CONN_EXTRA= CHILD_EXTRA=
    ip netns exec "$NS_A" ping -c 2 -i 0.2 -W 2 -I 10.1.0.1 10.2.0.1 >/dev/null 2>&1
    local t0; t0=$(now)
    kill -9 "$VNET_PID"; wait "$VNET_PID" 2>/dev/null; VNET_PID=
    local gone=0
    for _ in $(seq 100); do
      sw --list-sas 2>/dev/null | grep -q 'vnet:' || { gone=1; break; }; sleep 0.2
    done
    local dt; dt=$(since "$t0")
    if [ $gone = 1 ] && grep -qiE 'giving up after|retransmit .* of request' "$DIR/charon.log"; then
      ok "$what: charon cleared its SAs ${dt}s after kill -9 ($(grep -m1 -oE 'giving up after [0-9]+ retransmits' "$DIR/charon.log"))"
    else
      ko "$what: SAs still listed after ${dt}s"
    fi
    stop_charon
  fi
}

wrong_psk_case() { # $1 our role
  local role=$1
  printf 'right\n' > "$DIR/psk"
  start_charon aes256gcm16-prfsha256-ecp256 aes256gcm16 wrong
  ip netns exec "$NS_A" timeout 40 "$VNET" ipsec up --local $A --remote $B --psk-file "$DIR/psk" \
     --local-ts 10.1.0.0/16 --remote-ts 10.2.0.0/16 --ike-proposals aes256gcm16-prfsha256-ecp256 \
     --esp-proposals aes256gcm16 --$role --tun ${P}t >"$DIR/vnet.out" 2>&1 &
  VNET_PID=$!
  sleep 0.3
  [ "$role" = responder ] && sw --initiate --child vnet --timeout 10 >/dev/null 2>&1
  wait "$VNET_PID"; local rc=$?; VNET_PID=
  if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'AUTHENTICATION_FAILED' "$DIR/vnet.out" \
     && grep -qiE 'AUTHENTICATION_FAILED|authentication of .* failed|MAC mismatched' "$DIR/charon.log" \
     && ! sw --list-sas 2>/dev/null | grep -q INSTALLED; then
    ok "wrong PSK, vnet $role: refused on both sides ($(grep -m1 AUTHENTICATION_FAILED "$DIR/vnet.out"))"
  else
    ko "wrong PSK, vnet $role: rc=$rc"
  fi
  stop_charon
}

# A CA, a certificate for each side (ECDSA P-256, PKCS#8 keys), and a rogue CA's certificate.
make_pki() {
  local d=$DIR/pki; mkdir -p "$d"
  for ca in ca rogue; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/$ca.key" \
      -out "$d/$ca.pem" -subj "/O=vnet/CN=interop $ca" -days 2 \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign >/dev/null 2>&1
  done
  # vnet-rogue and swan-rogue carry the same names as vnet and swan, from the rogue CA.
  for who in vnet:ca swan:ca vnet-rogue:rogue swan-rogue:rogue; do
    local n=${who%%:*} ca=${who##*:} cn=${who%%[-:]*}
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/$n.key" \
      -out "$d/$n.csr" -subj "/O=vnet/CN=$cn.interop" >/dev/null 2>&1
    printf 'subjectAltName=DNS:%s.interop\n' "$cn" > "$d/$n.ext"
    openssl x509 -req -in "$d/$n.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca.key" -CAcreateserial \
      -out "$d/$n.pem" -days 1 -extfile "$d/$n.ext" >/dev/null 2>&1
  done
}

cert_case() { # $1 our role, $2 our certificate, $3 strongSwan's (the -rogue ones: wrong CA)
  local role=$1 me=$2 them=$3 d=$DIR/pki t0; t0=$(now)
  local what="certificates, vnet $role"
  [ "$me" = vnet-rogue ] && what="our certificate from another CA, vnet $role"
  [ "$them" = swan-rogue ] && what="strongSwan's certificate from another CA, vnet $role"
  # swanctl loads private keys from private/ beside the swanctl.conf it is given.
  mkdir -p "$DIR/private"; cp "$d/$them.key" "$DIR/private/swan.key"
  AUTH_BLOCKS="local { auth = pubkey
            certs = $d/$them.pem
            id = \"O=vnet, CN=swan.interop\" }
    remote { auth = pubkey
             cacerts = $d/ca.pem
             id = \"O=vnet, CN=vnet.interop\" }" \
  AUTH_ARGS="--cert $d/$me.pem --key $d/$me.key --ca $d/ca.pem --remote-id O=vnet,CN=swan.interop" \
    bring_up aes256gcm16-prfsha256-ecp256 aes256gcm16 "$role" --dpd 10
  local up=$?
  if [ "$me" = vnet-rogue ]; then
    sleep 1
    # charon's CA check refuses us; we hear AUTHENTICATION_FAILED.
    if [ $up -ne 0 ] && grep -q 'AUTHENTICATION_FAILED' "$DIR/vnet.out" \
       && grep -qE 'no issuer certificate found|no trusted .* public key found' "$DIR/charon.log" \
       && ! sw --list-sas 2>/dev/null | grep -q INSTALLED; then
      ok "$what: refused on both sides (charon: $(grep -m1 -oE 'no issuer certificate found for .*' "$DIR/charon.log"))"
    else
      ko "$what: up=$up"
    fi
  elif [ "$them" = swan-rogue ]; then
    sleep 1
    # Our CA check refuses strongSwan.
    if [ $up -ne 0 ] && grep -q 'certificate not trusted' "$DIR/vnet.out" \
       && ! sw --list-sas 2>/dev/null | grep -q INSTALLED; then
      ok "$what: refused on both sides ($(grep -m1 -o 'AUTHENTICATION_FAILED.*' "$DIR/vnet.out"))"
    else
      ko "$what: up=$up"
    fi
  elif [ $up -ne 0 ]; then
    ko "$what: no CHILD_SA"
  elif ! grep -q 'peer O=vnet, CN=swan.interop$' "$DIR/vnet.out"; then
    ko "$what: we did not report strongSwan's certificate identity"
  elif ! grep -q "authentication of 'O=vnet, CN=vnet.interop' with" "$DIR/charon.log"; then
    ko "$what: charon did not authenticate our certificate identity"
  elif ip netns exec "$NS_A" ping -c 3 -i 0.2 -W 2 -I 10.1.0.1 10.2.0.1 >/dev/null 2>&1 \
       && ip netns exec "$NS_B" ping -c 3 -i 0.2 -W 2 -I 10.2.0.1 10.1.0.1 >/dev/null 2>&1; then
    ok "$what: $(grep -m1 -o 'peer .*' "$DIR/vnet.out"), charon: $(grep -m1 -oE "authentication of '[^']*' with [A-Z_0-9]+ successful" "$DIR/charon.log"), ping both ways ($(since "$t0")s)"
  else
    ko "$what: ping failed"
  fi
  stop_vnet; stop_charon
  rm -rf "$DIR/private"
}

vip_case() { # $1 who asks for an inner address: strongswan (from our --pool) or vnet
  local who=$1 t0 what vip; t0=$(now)
  if [ "$who" = strongswan ]; then
    what="inner address for strongSwan from our --pool 10.3.0.0/24 (vnet responder)"; vip=10.3.0.1
    CONN_EXTRA="vips = 0.0.0.0" CHILD_TS="remote_ts = 10.1.0.0/16" OUR_TS="--local-ts 10.1.0.0/16" \
      bring_up aes256gcm16-prfsha256-ecp256 aes256gcm16 responder --pool 10.3.0.0/24 --dns 10.1.0.53
  else
    what="inner address for us from strongSwan's pool 10.4.0.0/24 (vnet initiator)"; vip=10.4.0.1
    CONN_EXTRA="pools = p" CHILD_TS="local_ts = 10.2.0.0/16" POOLS_BLOCK="pools { p { addrs = 10.4.0.0/24
         dns = 10.2.0.53 } }" OUR_TS="--remote-ts 10.2.0.0/16" \
      bring_up aes256gcm16-prfsha256-ecp256 aes256gcm16 initiator --request-vip
  fi
  local up=$?
  if [ $up -ne 0 ]; then
    ko "$what: no CHILD_SA"
  elif ! grep -q "VIRTUAL_IP $vip" "$DIR/vnet.out"; then
    ko "$what: no VIRTUAL_IP $vip line"
  elif [ "$who" = strongswan ] && ! grep -q "installing new virtual IP $vip\|installing DNS server 10.1.0.53\|handling INTERNAL_IP4_DNS" "$DIR/charon.log"; then
    ko "$what: charon did not install $vip"
  elif [ "$who" = strongswan ] && ip netns exec "$NS_B" ping -c 3 -i 0.2 -W 2 -I $vip 10.1.0.1 >/dev/null 2>&1; then
    ok "$what: $(grep -m1 'CHILD_SA INSTALLED' "$DIR/vnet.out" | cut -d' ' -f6-8), charon pings 10.1.0.1 from $vip ($(since "$t0")s)"
  elif [ "$who" = vnet ] && ip netns exec "$NS_A" ping -c 3 -i 0.2 -W 2 -I $vip 10.2.0.1 >/dev/null 2>&1; then
    ok "$what: $(grep -m1 'VIRTUAL_IP' "$DIR/vnet.out"), $(grep -m1 'CHILD_SA INSTALLED' "$DIR/vnet.out" | cut -d' ' -f6-8), we ping 10.2.0.1 from $vip ($(since "$t0")s)"
  else
    ko "$what: ping from $vip failed"
  fi
  stop_vnet; stop_charon
}

T0=$(now)
setup_net
for c in $CASES; do
  t=$(now)
  case $c in
    matrix) run_matrix ;;
    rekey) rekey_case vnet; rekey_case strongswan ;;
    dpd) dpd_case strongswan; dpd_case vnet ;;
    psk) wrong_psk_case initiator; wrong_psk_case responder ;;
    vip) vip_case strongswan; vip_case vnet ;;
    cert) make_pki
          cert_case initiator vnet swan; cert_case responder vnet swan
          cert_case initiator vnet-rogue swan; cert_case initiator vnet swan-rogue ;;
    *) echo "unknown case $c"; fail=$((fail+1)) ;;
  esac
  echo "  ($c: $(since "$t")s)"
done
echo "$pass passed, $fail failed in $(since "$T0")s"
[ $fail -eq 0 ]
