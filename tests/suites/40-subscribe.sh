#!/usr/bin/env bash
# `tracehose subscribe` end to end against a moto server's CloudWatch Logs: prefixes, idempotence, updates,
# the per-group filter limit, the forwarder's own log group, dry run, CreateLogGroup events.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/python.sh
ensure_venv

cargo build --quiet --locked -p tracehose-forwarder --bin tracehose
source tests/lib/target.sh
python tests/deploy/subscribe_moto.py "$target_dir/debug/tracehose"
