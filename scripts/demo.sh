#!/usr/bin/env bash
# The main job on the embedded lab: start the lab (a real PBX, SIP connector server, echo UAS
# and Mihu API sandbox on loopback), check the lab PBX as a customer site, and create the
# connector through the API only if every check passed.
set -euo pipefail
cd "$(dirname "$0")/.."
SIPKIT=.venv/bin/sipkit
$SIPKIT lab up
lab_dir=$($SIPKIT lab up --json | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["directory"])')
set -a; . "$lab_dir/lab.env"; set +a        # SIPKIT_API_URL, SIPKIT_API_TOKEN_FILE
echo
echo "\$ sipkit check --config $lab_dir/site.yaml --create"
$SIPKIT check --config "$lab_dir/site.yaml" --create
echo
echo "\$ sipkit verify --config $lab_dir/site.yaml"
$SIPKIT verify --config "$lab_dir/site.yaml"   # calls through the PBX to and from the agent
echo
echo "\$ sipkit connector list"
$SIPKIT connector list
echo
echo "\$ sipkit check --config $lab_dir/trunk.yaml        # the lab carrier as a SIP trunk"
$SIPKIT check --config "$lab_dir/trunk.yaml"
