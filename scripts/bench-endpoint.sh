#!/usr/bin/env bash
# Benchmark of the Firehose HTTP endpoint (never in CI): `tracehose serve` pinned to core 0, the local intake
# (accept-all, Dynatrace) and the load generator pinned to core 1, 1 MB gzipped requests at concurrency 4; the
# core pipeline's throughput on the same bodies in the same run; the Lambda face's start-up to its first
# Runtime API poll. Usage: scripts/bench-endpoint.sh [REQUESTS] [CONCURRENCY] [dynatrace|ndjson]
# `dynatrace` ships every line to the intake (encoding, gzip, HTTP: the whole delivery stage); `ndjson` writes
# the same NDJSON the pipeline baseline writes, to /dev/null, which isolates what the endpoint itself costs.
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-200}
concurrency=${2:-4}
dest=${3:-dynatrace}
cargo build --release --quiet -p tracehose-forwarder --bin tracehose --example intake --example loadgen
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin=$target_dir/release
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

mkfifo "$work/intake.in"
taskset -c 1 "$bin/examples/intake" --port 0 --accept-all --dt-token T <"$work/intake.in" >"$work/intake.out" &
pids+=($!)
exec 3>"$work/intake.in"
until grep -q "listening on" "$work/intake.out" 2>/dev/null; do sleep 0.1; done
intake=$(sed -n 's/^listening on //p' "$work/intake.out")

if [ "$dest" = ndjson ]; then
  destination=(TRACEHOSE_FILE=/dev/null)
else
  destination=(DT_CONNECTION_BASE_URL="$intake" DT_LOG_COLLECTION_AUTH_TOKEN=T)
fi
env "${destination[@]}" TRACEHOSE_STDOUT=false TRACEHOSE_ACCESS_KEYS=bench-key TRACEHOSE_ENDPOINT_DEDUP_BYTES=0 \
  taskset -c 0 "$bin/tracehose" serve --listen 127.0.0.1:0 --max-concurrent-requests "$concurrency" \
  2>"$work/serve.log" &
serve_pid=$!
pids+=($serve_pid)
until grep -q "listening on" "$work/serve.log" 2>/dev/null; do sleep 0.1; done
url=$(sed -n 's/.*listening on //p' "$work/serve.log")/

taskset -c 1 "$bin/examples/loadgen" serve --url "$url" --key bench-key --concurrency "$concurrency" \
  --requests "$requests" --pid "$serve_pid"
taskset -c 0 "$bin/examples/loadgen" startup --binary "$bin/tracehose"
