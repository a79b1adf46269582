#!/usr/bin/env bash
# Delivery end to end: the real binary ships to the local vendor intake (forwarder/examples/intake.rs, which
# checks each vendor's documented contract), from the CLI and from the Lambda handler under cargo-lambda's
# runtime emulator; secrets come from a moto Secrets Manager; a failing destination makes a direct
# subscription return an error so Lambda retries; forward mode answers each Firehose record.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/python.sh
ensure_venv

source tests/lib/checks.sh

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 600); do (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 1; done; return 1; }

cargo build --quiet --locked -p tracehose-forwarder --bin tracehose --example intake
source tests/lib/target.sh
bin="$target_dir/debug/tracehose"

# start_intake NAME [ARGS...]: an intake in the background; its base URL in $NAME_url, its output in $work/NAME.out.
start_intake() {
  local name=$1
  shift
  "$target_dir/debug/examples/intake" --dt-token dt-token --dd-key dd-key "$@" >"$work/$name.out" 2>"$work/$name.err" &
  pids+=($!)
  eval "${name}_pid=$!"
  for _ in $(seq 1 100); do
    grep -q "listening on" "$work/$name.out" 2>/dev/null && break
    sleep 0.1
  done
  eval "${name}_url=$(sed -n 's/^listening on //p' "$work/$name.out")"
}

# stop_intake NAME: ends it and leaves its JSON summary in $work/NAME.json.
stop_intake() {
  local pid_var="${1}_pid"
  kill -TERM "${!pid_var}" && wait "${!pid_var}" 2>/dev/null || true
  tail -1 "$work/$1.out" >"$work/$1.json"
}

destinations() { # the environment that points every destination at intake $1's URL
  local url=$1
  echo "DT_CONNECTION_BASE_URL=$url DT_LOG_COLLECTION_AUTH_TOKEN=dt-token OTEL_EXPORTER_OTLP_ENDPOINT=$url" \
    "DD_API_KEY=dd-key DD_LOGS_CONFIG_LOGS_DD_URL=$url/api/v2/logs"
}

start_intake good

cli_ships_everywhere() {
  # shellcheck disable=SC2046
  env $(destinations "$good_url") "$bin" process samples/events/* >"$work/out.ndjson" 2>"$work/err.txt" || return 1
  [ ! -s "$work/out.ndjson" ] || return 1 # destinations configured: nothing on stdout
  grep -q "tracehose: delivery lines=" "$work/err.txt" && grep -q "failed_events=0" "$work/err.txt" || return 1
  python3 - "$work/err.txt" <<'PY'
import re, sys
err = open(sys.argv[1]).read()
for name in ("dynatrace", "otlp", "datadog"):
    m = re.search(name + r": received=(\d+) delivered=(\d+) truncated=\d+ retried=\d+ failed=(\d+) rejected=(\d+)", err)
    assert m and m.group(1) == m.group(2) and int(m.group(2)) > 50 and m.group(3) == m.group(4) == "0", (name, err)
PY
}
check "process ships every sample to Dynatrace, OTLP and Datadog at once" cli_ships_everywhere

cli_stdout_and_file_too() {
  # shellcheck disable=SC2046
  env $(destinations "$good_url") TRACEHOSE_STDOUT=true TRACEHOSE_FILE="$work/copy.ndjson" \
    "$bin" process samples/events/direct-node-extension-markers.json >"$work/out.ndjson" 2>/dev/null || return 1
  diff -q "$work/out.ndjson" samples/expected/direct-node-extension-markers.ndjson >/dev/null &&
    diff -q "$work/copy.ndjson" samples/expected/direct-node-extension-markers.ndjson >/dev/null
}
check "stdout and a file get the NDJSON contract alongside the HTTP destinations" cli_stdout_and_file_too

cli_bad_destination_config() {
  local status=0
  DT_CONNECTION_BASE_URL=http://127.0.0.1:9 "$bin" process samples/events/control-message.json 2>"$work/err.txt" >/dev/null || status=$?
  [ "$status" -eq 2 ] && grep -q "DT_CONNECTION_BASE_URL is set but DT_LOG_COLLECTION_AUTH_TOKEN" "$work/err.txt" || return 1
  status=0
  TRACEHOSE_EXCLUDE_PATTERN='(unclosed' "$bin" process samples/events/control-message.json 2>"$work/err.txt" >/dev/null || status=$?
  [ "$status" -eq 2 ] && grep -q "TRACEHOSE_EXCLUDE_PATTERN" "$work/err.txt"
}
check "a bad destination setting exits 2 naming the variable" cli_bad_destination_config

# Secrets Manager, for real, in moto: the key comes from the secret, never from the environment.
moto_port=$(free_port)
python3 -m moto.server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
wait_port "$moto_port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=eu-west-1 AWS_REGION=eu-west-1
secret_arn() { # secret_arn NAME VALUE: creates the secret in moto, prints its ARN
  python3 - "$moto_port" "$1" "$2" <<'PY'
import json, sys, urllib.request
port, name, value = sys.argv[1:]
req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=json.dumps({"Name": name, "SecretString": value}).encode(),
    headers={"X-Amz-Target": "secretsmanager.CreateSecret", "Content-Type": "application/x-amz-json-1.1",
             "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=x"})
print(json.load(urllib.request.urlopen(req))["ARN"])
PY
}

cli_secrets_from_secrets_manager() {
  local good bad status=0
  good=$(secret_arn dd-key-good dd-key) && bad=$(secret_arn dd-key-bad not-the-key) || return 1
  AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" DD_API_KEY_SECRET_ARN="$good" DD_LOGS_CONFIG_LOGS_DD_URL="$good_url/api/v2/logs" \
    "$bin" process samples/events/direct-python-cold-xray.json >/dev/null 2>"$work/err.txt" || return 1
  grep -q "datadog: received=7 delivered=7" "$work/err.txt" || return 1
  AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" DD_API_KEY_SECRET_ARN="$bad" DD_LOGS_CONFIG_LOGS_DD_URL="$good_url/api/v2/logs" \
    "$bin" process samples/events/direct-python-cold-xray.json >/dev/null 2>"$work/err.txt" || status=$?
  [ "$status" -eq 1 ] && grep -q "datadog: received=7 delivered=0 .* rejected=7" "$work/err.txt" || return 1
  ! grep -q "not-the-key" "$work/err.txt" # a secret never shows
}
check "*_SECRET_ARN: the key is read from Secrets Manager (moto), never printed" cli_secrets_from_secrets_manager

# The Lambda handler under cargo-lambda's emulator, once against a healthy intake in forward mode, once against
# an intake that fails every request.
start_intake broken --fail-fraction 1 --seed 3
watch() { # watch NAME PORT ENV...: a cargo lambda watch instance with these variables
  local name=$1 port=$2
  shift 2
  local envs=()
  for kv in "$@"; do envs+=(--env-var "$kv"); done
  cargo lambda watch --quiet --ignore-changes -P "$port" -p tracehose-forwarder --bin tracehose "${envs[@]}" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
  wait_port "$port"
}
forward_port=$(free_port)
# shellcheck disable=SC2046
watch forward "$forward_port" $(destinations "$good_url") TRACEHOSE_FIREHOSE_MODE=forward
failing_port=$(free_port)
# shellcheck disable=SC2046
watch failing "$failing_port" $(destinations "$broken_url") TRACEHOSE_MAX_ATTEMPTS=2
invoke() { # invoke PORT FILE: the handler's JSON response on stdout (or the error). The first call waits for the build.
  timeout 600 cargo lambda invoke tracehose -P "$1" --data-file "$2" --output-format json
}

lambda_forward_mode() {
  invoke "$forward_port" samples/events/firehose-transformation-streams.json >"$work/resp.json" || return 1
  python3 - "$work/resp.json" samples/events/firehose-transformation-streams.json <<'PY'
import json, sys
resp, event = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert [r["recordId"] for r in resp["records"]] == [r["recordId"] for r in event["records"]], resp
assert [r["result"] for r in resp["records"]] == ["Ok", "Ok", "Dropped", "Ok"], resp
# Forward mode hands Firehose back the original data, for its own destination's archive.
for sent, got in zip(event["records"], resp["records"]):
    if got["result"] == "Ok":
        assert got["data"] == sent["data"], (sent["recordId"], got)
PY
}
check "lambda: forward mode ships each record and answers it Ok with its original data" lambda_forward_mode

lambda_direct_retries_on_transient_failure() {
  # A failing destination is transient: the invocation must fail so that Lambda retries the batch.
  if invoke "$failing_port" samples/events/direct-python-cold-xray.json >"$work/resp.json" 2>&1; then
    echo "expected an error, got: $(cat "$work/resp.json")"
    return 1
  fi
  grep -q "Undelivered\|could not be delivered" "$work/resp.json" "$work/failing.log"
}
check "lambda: a direct subscription whose destinations fail transiently returns an error" lambda_direct_retries_on_transient_failure

lambda_emf() {
  grep -q '"_aws":{"Timestamp":' "$work/forward.log" && grep -q '"Delivered.otlp":' "$work/forward.log"
}
check "lambda: the ledger reaches the function's stdout as an EMF line" lambda_emf

stop_intake good
intake_clean() {
  python3 - "$work/good.json" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
# The one request sent on purpose with the wrong key (the secrets check) is the only violation allowed.
violations = summary["violations"]
assert len(violations) == 1 and "DD-API-KEY missing or not the configured key" in violations[0], violations
assert all(summary["entries_accepted"].get(v, 0) > 0 for v in ("dynatrace", "otlp", "datadog")), summary
PY
}
check "the intake saw no contract violation but the deliberate wrong key" intake_clean

if ! checks_done "delivery suite"; then
  for log in forward failing; do
    echo "--- cargo lambda watch $log (tail) ---"
    tail -30 "$work/$log.log" 2>/dev/null || true
  done
  exit 1
fi
