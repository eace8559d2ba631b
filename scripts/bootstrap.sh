#!/usr/bin/env bash
# Set up everything sipkit's demo and tests need on a fresh Debian/Ubuntu machine:
# the lab's Debian packages (only those missing), a venv in .venv, sipkit installed in it.
# Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

# chromium: the --html report is checked in headless Chromium (tests/integration/test_html_report.py)
APT_PACKAGES=(kamailio kamailio-tls-modules sip-tester sipsak openssl iproute2 nftables tshark make chromium)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
    command -v sudo >/dev/null || { echo "need root to install: ${missing[*]}" >&2; exit 1; }
  else
    SUDO=
  fi
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# pjsua2-python wheels exist for CPython 3.8-3.12 only.
PY=""
for cand in python3.12 python3.11 python3; do
  if command -v "$cand" >/dev/null &&
     "$cand" -c 'import sys; sys.exit(not ((3,11) <= sys.version_info[:2] <= (3,12)))' 2>/dev/null; then
    PY=$cand; break
  fi
done
[[ -n "$PY" ]] || { echo "sipkit needs Python 3.11 or 3.12 (pjsua2-python has no newer wheels)" >&2; exit 1; }

stamp=.venv/.sipkit-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
if [[ ! -f $stamp || "$(cat $stamp)" != "$want" ]]; then
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -m pip install -q -e '.[test]' 2>&1 | grep -v "is ignored" || true
  .venv/bin/python -c 'import sipkit, pjsua2, dns, httpx, pydantic' # fail loudly if incomplete
  echo "$want" > $stamp
fi
