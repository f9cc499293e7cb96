#!/usr/bin/env bash
# The whole vnet test suite, on a fresh Debian 12 machine with Rust: installs what the tests
# need (Debian packages, Python packages in a venv), then runs every test.
#
#   ./scripts/test.sh            # everything
#   VNET_SKIP_INSTALL=1 ./scripts/test.sh   # do not touch system packages
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: strongSwan (with the userspace kernel-libipsec plugin) for IPsec interop,
# iperf3 and ping for data-plane tests, tshark to dissect our packets, python3-venv for the
# Azure SDK/CLI tests, iproute2 for namespaces, openssl to make the interop certificates.
PKGS=(strongswan-charon strongswan-swanctl libstrongswan-standard-plugins libstrongswan-extra-plugins libcharon-extra-plugins
      iperf3 iputils-ping tshark iproute2 python3-venv python3-pip procps openssl)
if [ "${VNET_SKIP_INSTALL:-0}" != 1 ] && [ "$(id -u)" = 0 ]; then
  missing=()
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "== installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

mkdir -p target
status=0
echo "== cargo test (workspace)"
cargo test --workspace --all-targets --no-fail-fast 2>&1 | tee target/cargo-test.log || status=1
# Doc tests are not covered by --all-targets.
cargo test --workspace --doc 2>&1 | tee -a target/cargo-test.log || status=1

py_passed=0
py_failed=0
if [ -x scripts/test-python.sh ]; then
  echo "== Azure SDK / CLI tests"
  scripts/test-python.sh 2>&1 | tee target/python-test.log || status=1
  last=$(grep -E '[0-9]+ (passed|failed)' target/python-test.log | tail -1 || true)
  py_passed=$(echo "$last" | grep -Eo '[0-9]+ passed' | grep -Eo '[0-9]+' || echo 0)
  py_failed=$(echo "$last" | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+' || echo 0)
fi

# One closing line for CI: totals over every cargo test binary and pytest.
passed=$(grep -Eo '^test result: [a-zA-Z]+\. [0-9]+ passed' target/cargo-test.log | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed;' target/cargo-test.log | awk '{s+=$1} END {print s+0}')
echo "all: $((passed + py_passed)) passed, $((failed + py_failed)) failed"
exit $status
