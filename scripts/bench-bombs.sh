#!/usr/bin/env bash
# What a hostile caller costs `tracehose serve` (issue 15), measured, never in CI: builds the release binary
# (under nice) and runs scripts/bench-bombs.py on it, and on BEFORE (another build of tracehose, e.g. of an
# older commit) first when given. Usage: scripts/bench-bombs.sh [BEFORE]
set -euo pipefail
cd "$(dirname "$0")/.."
nice -n 19 cargo build --release --locked --quiet -p tracehose-forwarder --bin tracehose
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
exec python3 scripts/bench-bombs.py ${1:+"$1"} "$target_dir/release/tracehose"
