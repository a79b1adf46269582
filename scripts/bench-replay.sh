#!/usr/bin/env bash
# Replay throughput benchmark (never in CI): `tracehose replay --to destinations` over a generated backup set
# in moto, next to `tracehose process` (the core pipeline) on the same bytes, in the same run; records/s,
# MB/s, peak RSS, and replay's share of the pipeline's throughput. BENCH_MB sets the size of the backup set
# (default 120 MB of backup lines, about 100 MB as stored since half the objects are gzipped; laid out twice in
# moto: as many small objects and as a few large ones).
set -euo pipefail
cd "$(dirname "$0")/.."
source tests/lib/python.sh
ensure_venv

cargo build --release --locked -p tracehose-forwarder --bin tracehose
target_dir=$(cargo metadata --format-version 1 --no-deps --locked | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
# Further binaries given as arguments (an earlier build, say) are measured on the same objects after it.
python scripts/bench_replay.py "$target_dir/release/tracehose" "$@"
