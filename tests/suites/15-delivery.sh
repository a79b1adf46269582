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
cargo build --quiet --locked -p tracehose-extension --bin tracehose-extension
source tests/lib/target.sh
bin="$target_dir/debug/tracehose"
extension="$target_dir/debug/tracehose-extension"

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
    "DD_API_KEY=dd-key DD_LOGS_CONFIG_LOGS_DD_URL=$url DD_DD_URL=$url" # the Datadog Agent's form: no path, the client appends it
}

start_intake good

cli_ships_everywhere() {
  # Files read again make no platform telemetry by default (their metrics were sent when the logs first went
  # by); asked for, it goes everywhere too.
  # shellcheck disable=SC2046
  env $(destinations "$good_url") "$bin" process samples/events/* >"$work/out.ndjson" 2>"$work/err.txt" || return 1
  ! grep -q -- "-metrics: \|-traces: " "$work/err.txt" || { cat "$work/err.txt"; return 1; }
  # shellcheck disable=SC2046
  env $(destinations "$good_url") DT_CONNECTION_AUTH_TOKEN=dt-token TRACEHOSE_LAMBDA_METRICS=on TRACEHOSE_INVOCATION_SPANS=xray \
    "$bin" process samples/events/* >"$work/out.ndjson" 2>"$work/err.txt" || return 1
  [ ! -s "$work/out.ndjson" ] || return 1 # destinations configured: nothing on stdout
  grep -q "datadog-metrics: received=[1-9]" "$work/err.txt" && grep -q "otlp-traces: received=[1-9]" "$work/err.txt" || { cat "$work/err.txt"; return 1; }
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

cli_datadog_url_as_the_agent_reads_it() {
  local out
  # host:port, plain http only because DD_LOGS_CONFIG_LOGS_NO_SSL says so; then the full intake URL as is.
  for form in "DD_LOGS_CONFIG_LOGS_DD_URL=${good_url#http://} DD_LOGS_CONFIG_LOGS_NO_SSL=True" \
    "DD_LOGS_CONFIG_LOGS_DD_URL=$good_url/api/v2/logs DD_LOGS_CONFIG_USE_COMPRESSION=false" \
    "DD_LOGS_CONFIG_LOGS_DD_URL=$good_url/ DD_LOGS_CONFIG_COMPRESSION_LEVEL=9"; do
    # shellcheck disable=SC2086
    env DD_API_KEY=dd-key DD_DD_URL="$good_url" $form "$bin" process samples/events/direct-python-cold-xray.json >/dev/null 2>"$work/err.txt" || {
      echo "$form:"; cat "$work/err.txt"; return 1
    }
    grep -q "datadog: received=7 delivered=7" "$work/err.txt" || { echo "$form:"; cat "$work/err.txt"; return 1; }
  done
  local status=0
  DD_API_KEY=dd-key DD_LOGS_CONFIG_LOGS_DD_URL=${good_url#http://} DD_LOGS_CONFIG_COMPRESSION_LEVEL=10 \
    "$bin" process samples/events/control-message.json >/dev/null 2>"$work/err.txt" || status=$?
  [ "$status" -eq 2 ] && grep -q "^tracehose: configuration error: DD_LOGS_CONFIG_COMPRESSION_LEVEL: expected a gzip level from 0 to 9" "$work/err.txt"
}
check "DD_LOGS_CONFIG_LOGS_DD_URL in the agent's forms (host:port with NO_SSL, scheme://host:port, .../api/v2/logs)" cli_datadog_url_as_the_agent_reads_it

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
  AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" DD_API_KEY_SECRET_ARN="$good" DD_LOGS_CONFIG_LOGS_DD_URL="$good_url" DD_DD_URL="$good_url" \
    "$bin" process samples/events/direct-python-cold-xray.json >/dev/null 2>"$work/err.txt" || return 1
  grep -q "datadog: received=7 delivered=7" "$work/err.txt" || return 1
  AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" DD_API_KEY_SECRET_ARN="$bad" DD_LOGS_CONFIG_LOGS_DD_URL="$good_url" DD_DD_URL="$good_url" \
    "$bin" process samples/events/direct-python-cold-xray.json >/dev/null 2>"$work/err.txt" || status=$?
  [ "$status" -eq 1 ] && grep -q "datadog: received=7 delivered=0 .* rejected=7" "$work/err.txt" || return 1
  ! grep -q "not-the-key" "$work/err.txt" # a secret never shows
}
check "*_SECRET_ARN: the key is read from Secrets Manager (moto), never printed" cli_secrets_from_secrets_manager

cli_dynatrace_token_secrets() {
  local arn
  arn=$(secret_arn dt-token dt-token) || return 1
  for var in DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN DT_CONNECTION_AUTH_TOKEN_SECRET_ARN \
    DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN; do
    env AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" DT_CONNECTION_BASE_URL="$good_url" "$var=$arn" \
      "$bin" process samples/events/direct-python-cold-xray.json >/dev/null 2>"$work/err.txt" || { echo "$var:"; cat "$work/err.txt"; return 1; }
    grep -q "dynatrace: received=7 delivered=7" "$work/err.txt" || { echo "$var:"; cat "$work/err.txt"; return 1; }
  done
}
check "each Dynatrace token secret variable is read from Secrets Manager (moto)" cli_dynatrace_token_secrets

cli_missing_secret_is_one_line() {
  local status=0 missing="arn:aws:secretsmanager:eu-west-1:123456789012:secret:no-such-secret-AbCdEf"
  AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" DD_API_KEY_SECRET_ARN="$missing" \
    "$bin" process samples/events/control-message.json >/dev/null 2>"$work/err.txt" || status=$?
  [ "$status" -eq 2 ] || { echo "exit $status"; cat "$work/err.txt"; return 1; }
  [ "$(cat "$work/err.txt")" = "tracehose: configuration error: DD_API_KEY_SECRET_ARN: no such secret in Secrets Manager" ] || { cat "$work/err.txt"; return 1; }
  status=0
  AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" DD_API_KEY_SECRET_ARN=datadog-key \
    "$bin" process samples/events/control-message.json >/dev/null 2>"$work/err.txt" || status=$?
  [ "$status" -eq 2 ] && [ "$(wc -l <"$work/err.txt")" -eq 1 ] && grep -q "^tracehose: configuration error: DD_API_KEY_SECRET_ARN: not a Secrets Manager ARN" "$work/err.txt"
}
check "a missing secret or a bad ARN is one line naming the variable (moto)" cli_missing_secret_is_one_line

extension_secrets() {
  # The extension, started with no Lambda around it, reads its secrets and prints its configuration errors
  # before it fails to register.
  local arn missing="arn:aws:secretsmanager:eu-west-1:123456789012:secret:no-such-secret-AbCdEf" closed
  arn=$(secret_arn dt-conn dt-token) && closed=$(free_port) || return 1
  local common=(AWS_LAMBDA_RUNTIME_API="127.0.0.1:$closed" AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
    DT_CONNECTION_BASE_URL="$good_url" TRACEHOSE_SHIP_LOGS=true TRACEHOSE_OTLP_RECEIVER_DISABLED=true TRACEHOSE_TELEMETRY_PORT=0)
  env "${common[@]}" DT_CONNECTION_AUTH_TOKEN_SECRETS_MANAGER_ARN="$arn" DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN="$missing" \
    timeout 20 "$extension" >/dev/null 2>"$work/ext.err" || true
  grep -q "configuration: DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN: no such secret in Secrets Manager" "$work/ext.err" &&
    grep -q "configuration: DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN is set but the secret it names was not read" "$work/ext.err" &&
    ! grep -q "DT_CONNECTION_AUTH_TOKEN" "$work/ext.err" || { cat "$work/ext.err"; return 1; }
  ! grep -q "dt-token" "$work/ext.err"
}
check "extension: a missing secret is one configuration line naming its variable, the others are read (moto)" extension_secrets

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
watch forward "$forward_port" $(destinations "$good_url") TRACEHOSE_FIREHOSE_MODE=forward TRACEHOSE_ACCESS_KEYS=the-key \
  AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port" AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=eu-west-1
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

# One event of every kind the handler routes, each as a file: a function URL (API Gateway) request, an S3
# notification of a backup object put into moto, a CloudTrail CreateLogGroup event, something unrecognised.
python3 - "$work" "$moto_port" <<'PY'
import json, sys, boto3
work, port = sys.argv[1:]
body = open("samples/events/firehose-http-json-format.json").read()
headers = {"X-Amz-Firehose-Protocol-Version": "1.0", "X-Amz-Firehose-Request-Id": json.loads(body)["requestId"],
           "X-Amz-Firehose-Access-Key": "the-key", "Content-Type": "application/json"}
json.dump({"resource": "/", "path": "/", "httpMethod": "POST", "headers": headers, "body": body, "isBase64Encoded": False,
           "requestContext": {"resourcePath": "/", "httpMethod": "POST", "stage": "prod"}}, open(f"{work}/function-url.json", "w"))
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="eu-west-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.create_bucket(Bucket="backups", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
key = "errors/http-endpoint-failed/2026/11/21/10/backup-1.gz"
s3.put_object(Bucket="backups", Key=key, Body=open("samples/events/backup-http-endpoint-failed.gz", "rb").read())
json.dump({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "backups"}, "object": {"key": key}}}]}, open(f"{work}/s3.json", "w"))
json.dump({"version": "0", "id": "1", "detail-type": "AWS API Call via CloudTrail", "source": "aws.logs",
           "detail": {"eventSource": "logs.amazonaws.com", "eventName": "CreateLogGroup",
                      "requestParameters": {"logGroupName": "/aws/lambda/new"}}}, open(f"{work}/create-log-group.json", "w"))
json.dump({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}, open(f"{work}/unrecognised.json", "w"))
PY

# printed NAME: how many invocations of watch instance NAME printed their summary, ledger and EMF line: the
# smallest of the three counts.
printed() {
  local log="$work/$1.log" s d e
  s=$(grep -c "tracehose: summary events_in=" "$log" || true)
  d=$(grep -c "tracehose: delivery lines=" "$log" || true)
  e=$(grep -c '"_aws":{"Timestamp":' "$log" || true)
  printf '%s\n' "$s" "$d" "$e" | sort -n | head -1
}

lambda_every_face_prints_its_ledger() {
  local name port event want before
  # name port event response-check (a python expression on `r`, the response; empty: the invocation fails)
  while read -r name port event check; do
    before=$(printed "$name")
    if [ -n "$check" ]; then
      invoke "$port" "$event" >"$work/resp.json" || { echo "$event: $(cat "$work/resp.json")"; return 1; }
      python3 -c "import json,sys; r=json.load(open(sys.argv[1])); assert $check, r" "$work/resp.json" || return 1
    elif invoke "$port" "$event" >"$work/resp.json" 2>&1; then
      echo "$event: expected an error, got $(cat "$work/resp.json")"
      return 1
    fi
    # cargo lambda relays the function's output on its own: wait for it to arrive, at most a minute.
    want=$((before + 1))
    for _ in $(seq 1 600); do [ "$(printed "$name")" -ge "$want" ] && break; sleep 0.1; done
    [ "$(printed "$name")" -ge "$want" ] || { echo "$event: no summary, ledger and EMF line in $name.log"; return 1; }
  done <<EOF2
forward $forward_port samples/events/direct-python-cold-xray.json r["summary"]["delivered"]==7
forward $forward_port samples/events/firehose-transformation-streams.json len(r["records"])==4
failing $failing_port samples/events/firehose-transformation-streams.json [x["result"]for(x)in(r["records"])]==["Ok","Ok","Dropped","Ok"]
forward $forward_port $work/function-url.json r["statusCode"]==200
forward $forward_port $work/s3.json r["replayed"][0]["complete"]
forward $forward_port $work/create-log-group.json "ignored"in(r)
forward $forward_port $work/unrecognised.json
EOF2
  # The replayed object's lines reached the destinations, and the ledger says so.
  grep -q "tracehose: replay s3://backups/" "$work/forward.log" &&
    grep "tracehose: delivery lines=" "$work/forward.log" | grep -q "datadog: received=[1-9]"
}
check "lambda: every face (subscription, transformation, forward, function URL, S3 replay, EventBridge, unrecognised) prints its summary, ledger and EMF line" lambda_every_face_prints_its_ledger

lambda_emf() {
  grep -q '"_aws":{"Timestamp":' "$work/forward.log" && grep -q '"Delivered.otlp":' "$work/forward.log"
}
check "lambda: the ledger reaches the function's stdout as an EMF line" lambda_emf

stop_intake good
intake_clean() {
  python3 - "$work/good.json" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
# The one run sent on purpose with the wrong key (the secrets check) is the only violation allowed: its logs
# request and its metrics request (the platform metrics of the sample's REPORT) carry the same key.
violations = summary["violations"]
assert 1 <= len(violations) <= 2, violations
assert all("DD-API-KEY missing or not the configured key" in v for v in violations), violations
assert all(summary["entries_accepted"].get(v, 0) > 0 for v in ("dynatrace", "otlp", "datadog")), summary
# The binary's platform telemetry reached its intakes too: Datadog's distribution points, OTLP metrics, and the
# X-Ray sample's invocation span.
assert all(summary["entries_accepted"].get(v, 0) > 0 for v in ("datadog_metrics", "otlp_metrics", "otlp_traces")), summary
PY
}
check "the intake saw no contract violation but the deliberate wrong key; metrics and spans arrived" intake_clean

if ! checks_done "delivery suite"; then
  for log in forward failing; do
    echo "--- cargo lambda watch $log (tail) ---"
    tail -30 "$work/$log.log" 2>/dev/null || true
  done
  exit 1
fi
