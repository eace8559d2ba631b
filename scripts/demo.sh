#!/usr/bin/env bash
# The main job on the embedded lab: start the lab, check the lab PBX as a customer site.
set -euo pipefail
cd "$(dirname "$0")/.."
SIPKIT=.venv/bin/sipkit
$SIPKIT lab up
site=$($SIPKIT lab up --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["site_file"])')
echo
echo "\$ sipkit check --config $site"
$SIPKIT check --config "$site"
