#!/usr/bin/env bash
# The forwarder end to end: samples up to date, the CLI as a user runs it (exit codes, NDJSON, summary), and
# the real binary under cargo-lambda's Lambda runtime emulator (direct subscription, Firehose transformation,
# warm state across invocations).
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/python.sh
ensure_venv

source tests/lib/checks.sh

work=$(mktemp -d)
watch_pid=
cleanup() {
  [ -n "$watch_pid" ] && kill "$watch_pid" 2>/dev/null && wait "$watch_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

check "samples are generated from their sources" python3 samples/generate.py --check

cargo build --quiet --locked -p tracehose-forwarder --bin tracehose
source tests/lib/target.sh
bin="$target_dir/debug/tracehose"

cli_samples() {
  "$bin" process samples/events/* >"$work/out.ndjson" 2>"$work/err.txt" || return 1
  python3 - "$work/out.ndjson" "$work/err.txt" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
err = open(sys.argv[2]).read()
assert len(lines) > 50, len(lines)
assert all({"timestamp", "message", "severity", "log_group", "log_stream", "attributes"} <= l.keys() for l in lines)
assert sum("trace_id" in l for l in lines) > len(lines) * 0.7, "most sample lines are correlated"
assert "tracehose: summary events_in=" in err and "failed_records=0" in err, err
PY
}
check "process samples/events/* prints correlated NDJSON and a clean summary" cli_samples

cli_stdin() {
  "$bin" process - <samples/events/direct-node-extension-markers.json 2>/dev/null | diff -q - samples/expected/direct-node-extension-markers.ndjson >/dev/null
}
check "process reads stdin" cli_stdin

cli_broken() {
  local status=0
  "$bin" process samples/broken/firehose-batch-hostile.json >"$work/out.ndjson" 2>"$work/err.txt" || status=$?
  [ "$status" -eq 1 ] && grep -q "gzip bomb" "$work/err.txt" && [ "$(wc -l <"$work/out.ndjson")" -eq 4 ]
}
check "hostile input: exit 1, errors named, the rest delivered" cli_broken

cli_bad_config() {
  local status=0
  TRACEHOSE_MAX_DECOMPRESSED_BYTES=lots "$bin" process samples/events/control-message.json 2>"$work/err.txt" >/dev/null || status=$?
  [ "$status" -eq 2 ] && grep -q "TRACEHOSE_MAX_DECOMPRESSED_BYTES" "$work/err.txt"
}
check "a bad variable fails with its name" cli_bad_config

cli_extreme_limits() {
  local status=0
  # The largest value is honoured, not wrapped into a limit of zero: every sample still comes out.
  TRACEHOSE_MAX_DECOMPRESSED_BYTES=18446744073709551615 TRACEHOSE_MAX_INPUT_BYTES=18446744073709551615 \
    "$bin" process samples/events/* 2>/dev/null | cmp -s - <("$bin" process samples/events/* 2>/dev/null) || return 1
  "$bin" process --max-decompressed-bytes 0 samples/events/control-message.json 2>"$work/err.txt" >/dev/null || status=$?
  [ "$status" -eq 2 ] && grep -q "max-decompressed-bytes" "$work/err.txt"
}
check "extreme limits are honoured or refused by name, never ignored" cli_extreme_limits

cli_empty_and_full_stdout() {
  local status=0
  "$bin" process - </dev/null 2>"$work/err.txt" >/dev/null || status=$?
  [ "$status" -eq 1 ] && grep -q "input is empty" "$work/err.txt" || return 1
  # When stdout fails the error is named and the summary still printed.
  status=0
  "$bin" process samples/events/direct-node-extension-markers.json >/dev/full 2>"$work/err.txt" || status=$?
  [ -e /dev/full ] || return 0
  [ "$status" -eq 1 ] && grep -q "writing output" "$work/err.txt" && grep -q "tracehose: summary" "$work/err.txt"
}
check "empty input and a failing stdout are reported, with the summary" cli_empty_and_full_stdout

# The Lambda handler under cargo-lambda's runtime emulator.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cargo lambda watch --quiet --ignore-changes -P "$port" -p tracehose-forwarder --bin tracehose \
  >"$work/watch.log" 2>&1 &
watch_pid=$!
for _ in $(seq 1 600); do
  if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 1
done

invoke() { # invoke FILE: the handler's JSON response on stdout. The first call waits for the build.
  timeout 600 cargo lambda invoke tracehose -P "$port" --data-file "$1" --output-format json
}

lambda_direct() {
  invoke samples/events/direct-python-cold-xray.json >"$work/resp.json" &&
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["summary"]["delivered"]==7 and r["summary"]["joined"]==6, r' "$work/resp.json"
}
check "lambda: direct subscription" lambda_direct

lambda_firehose() {
  invoke samples/events/firehose-transformation-streams.json >"$work/resp.json" &&
    python3 - "$work/resp.json" samples/events/firehose-transformation-streams.json <<'PY'
import base64, gzip, json, sys
resp, event = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert [r["recordId"] for r in resp["records"]] == [r["recordId"] for r in event["records"]], resp
assert [r["result"] for r in resp["records"]] == ["Ok", "Ok", "Dropped", "Ok"], resp
first = [json.loads(l) for l in gzip.decompress(base64.b64decode(resp["records"][0]["data"])).splitlines()]
assert all(l["trace_id"] == "5f35ae120c0fec141ab77a00bc047aa2" for l in first), first
PY
}
check "lambda: Firehose transformation answers each record" lambda_firehose

lambda_warm() {
  invoke samples/events/split-delivery.1.json >/dev/null &&
    invoke samples/events/split-delivery.2.json >"$work/resp.json" &&
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["summary"]["joined"]==4, r' "$work/resp.json"
}
check "lambda: a warm forwarder joins an invocation split across deliveries" lambda_warm

lambda_stdout() {
  grep -q '"trace_id":"0af7651916cd43dd8448eb211c80319c"' "$work/watch.log"
}
check "lambda: records reach the function's stdout as NDJSON" lambda_stdout

if ! checks_done "forwarder suite"; then
  echo "--- cargo lambda watch log (tail) ---"
  tail -40 "$work/watch.log"
  exit 1
fi
