#!/usr/bin/env bash
# The Firehose HTTP endpoint end to end (tests/deploy/endpoint_e2e.py): function URL events under cargo-lambda,
# `tracehose serve` over real HTTP with SIGTERM, and genuine subscription payloads from moto's CloudWatch Logs
# -> Firehose -> S3, all delivered to the local vendor intake.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/python.sh
ensure_venv

cargo build --quiet --locked -p tracehose-forwarder --bin tracehose --example intake
source tests/lib/target.sh
python tests/deploy/endpoint_e2e.py "$target_dir/debug/tracehose" "$target_dir/debug/examples/intake"
