#!/usr/bin/env bash
# The Azure client tests: azure-mgmt-network 33.x with azure-identity, and the real Azure CLI,
# against a real `vnet serve` (HTTPS with its own CA, bearer tokens from its token endpoint).
#
#   scripts/test-python.sh                 # everything (makes .venv and .venv-az on first run)
#   scripts/test-python.sh -k cross       # extra arguments go to pytest
#   VNET_SKIP_AZ=1 scripts/test-python.sh  # without the Azure CLI part
#
# Unattended on a fresh Debian 12 (Python 3.11): needs python3-venv (installed here when
# missing and running as root), cargo, and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

ensure_venv_support() {
  if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "== installing python3-venv"
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq && apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
    else
      echo "python3 cannot make virtual environments: install python3-venv" >&2
      exit 1
    fi
  fi
}

# make_venv DIR: a working venv in DIR (remade when broken, e.g. after a Python upgrade).
make_venv() {
  if ! "$1/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$1"
    "$PY" -m venv "$1"
    "$1/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
  fi
}

ensure_venv_support
echo "== Python SDK environment (.venv)"
make_venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r tests/python/requirements.txt

if [ "${VNET_SKIP_AZ:-0}" != 1 ]; then
  echo "== Azure CLI environment (.venv-az)"
  make_venv .venv-az
  if .venv-az/bin/python -m pip install -q --disable-pip-version-check -r tests/python/requirements-az.txt \
     && .venv-az/bin/az version >/dev/null 2>&1; then
    export AZ_BIN="$PWD/.venv-az/bin/az"
  else
    echo "WARNING: azure-cli could not be installed or does not run; the az tests will be skipped" >&2
    export AZ_BIN=""
  fi
else
  export AZ_BIN=""
fi

echo "== building vnet"
cargo build -p vnet
export VNET_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/vnet"

echo "== pytest tests/python"
exec .venv/bin/python -m pytest tests/python "$@"
