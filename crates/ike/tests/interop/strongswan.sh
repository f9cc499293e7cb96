#!/usr/bin/env bash
# Interop of `vnet ipsec up` with strongSwan (charon + kernel-libipsec) in network namespaces.
# Usage: strongswan.sh [VNET_BINARY]   (as root; needs strongswan-charon, strongswan-swanctl,
# libcharon-extra-plugins, libstrongswan-extra-plugins). Prints one line per case and
# "N passed, M failed"; exits non-zero if any case failed.
set -u
VNET=${1:-target/debug/vnet}
VNET=$(readlink -f "$VNET")
P=ikei$$            # unique prefix for namespaces and links
NS_A=${P}a NS_B=${P}b
A=198.18.50.1 B=198.18.50.2
DIR=$(mktemp -d /tmp/${P}.XXXX)
pass=0 fail=0

cleanup() {
  [ -n "${CHARON_PID:-}" ] && kill "$CHARON_PID" 2>/dev/null
  [ -n "${VNET_PID:-}" ] && kill "$VNET_PID" 2>/dev/null
  ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_B" 2>/dev/null
  rm -rf "$DIR"
}
trap cleanup EXIT

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

start_charon() { # $1 ike proposals, $2 esp proposals, $3 psk
  cat > "$DIR/strongswan.conf" <<CONF
charon {
  load = random nonce openssl aes sha1 sha2 hmac kdf gmp curve25519 gcm chapoly pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici updown
  retransmit_tries = 3
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
    local { auth = psk
            id = $B }
    remote { auth = psk
             id = $A }
    children { vnet { local_ts = 10.2.0.0/16
                      remote_ts = 10.1.0.0/16
                      esp_proposals = $2 } }
  }
}
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
stop_charon() { kill "$CHARON_PID" 2>/dev/null; wait "$CHARON_PID" 2>/dev/null; CHARON_PID=; }
stop_vnet() { [ -n "${VNET_PID:-}" ] && kill "$VNET_PID" 2>/dev/null; wait "$VNET_PID" 2>/dev/null; VNET_PID=; }

ok() { echo "PASS $*"; pass=$((pass+1)); }
ko() { echo "FAIL $*"; fail=$((fail+1)); echo "--- vnet:"; cat "$DIR/vnet.out"; echo "--- charon:"; tail -30 "$DIR/charon.log"; }

run_case() { # $1 ike, $2 esp, $3 our role
  local ike=$1 esp=$2 role=$3 psk="interop-$RANDOM"
  printf '%s\n' "$psk" > "$DIR/psk"
  start_charon "$ike" "$esp" "$psk"
  ip netns exec "$NS_A" "$VNET" ipsec up --local $A --remote $B --psk-file "$DIR/psk" \
     --local-ts 10.1.0.0/16 --remote-ts 10.2.0.0/16 --ike-proposals "$ike" --esp-proposals "$esp" \
     --$role --tun ${P}t --dpd 10 >"$DIR/vnet.out" 2>&1 &
  VNET_PID=$!
  sleep 0.5
  [ "$role" = responder ] && sw --initiate --child vnet --timeout 10 >/dev/null 2>&1
  local up=0
  for _ in $(seq 100); do grep -q 'CHILD_SA INSTALLED' "$DIR/vnet.out" && up=1 && break; sleep 0.1; done
  local sas; sas=$(sw --list-sas 2>/dev/null)
  if [ $up = 1 ] && echo "$sas" | grep -q INSTALLED; then
    sleep 0.5
    if ip netns exec "$NS_A" ping -c 3 -i 0.2 -W 2 -I 10.1.0.1 10.2.0.1 >/dev/null 2>&1; then
      ok "$ike / $esp, vnet $role: $(grep 'CHILD_SA INSTALLED' "$DIR/vnet.out" | head -1 | cut -d' ' -f5), ping through the tunnel"
    else
      ko "$ike / $esp, vnet $role: SAs up but ping failed"
    fi
  else
    ko "$ike / $esp, vnet $role: no CHILD_SA"
  fi
  stop_vnet; stop_charon
}

run_wrong_psk() { # $1 our role
  local role=$1
  printf 'right\n' > "$DIR/psk"
  start_charon aes256gcm16-prfsha256-ecp256 aes256gcm16 wrong
  ip netns exec "$NS_A" timeout 40 "$VNET" ipsec up --local $A --remote $B --psk-file "$DIR/psk" \
     --local-ts 10.1.0.0/16 --remote-ts 10.2.0.0/16 --ike-proposals aes256gcm16-prfsha256-ecp256 \
     --esp-proposals aes256gcm16 --$role --tun ${P}t >"$DIR/vnet.out" 2>&1 &
  VNET_PID=$!
  sleep 0.5
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

setup_net
for role in initiator responder; do
  run_case aes256gcm16-prfsha256-ecp256 aes256gcm16 $role
  run_case aes128gcm16-prfsha256-x25519 aes128gcm16 $role
  run_case aes256-sha256-modp2048 aes256-sha256 $role
  run_case aes256-sha1-modp1024 aes256-sha1 $role
  run_wrong_psk $role
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
