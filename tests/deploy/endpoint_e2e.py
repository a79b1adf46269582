"""The Firehose HTTP endpoint end to end: the built binary under `cargo lambda watch` (function URL events),
`tracehose serve` over real HTTP (SIGTERM included), and genuine subscription payloads from a moto server's
CloudWatch Logs -> subscription filter -> Firehose -> S3, POSTed to `serve` as Firehose would.

Usage: endpoint_e2e.py TRACEHOSE_BINARY INTAKE_BINARY. Ends with 'N passed, N failed'; exits non-zero on failure.
"""

import base64
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

from harness import Cases, clients, free_port, moto_server, wait_port

BINARY, INTAKE = sys.argv[1], sys.argv[2]
KEY = "e2e-access-key"
ARN = "arn:aws:firehose:us-east-1:123456789012:deliverystream/e2e"
SAMPLE = json.load(open("samples/events/firehose-http-json-format.json"))
WORK = tempfile.mkdtemp(prefix="endpoint-e2e-")


def start_intake():
    proc = subprocess.Popen([INTAKE, "--port", "0", "--dt-token", "T", "--dd-key", "K"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.startswith("listening on "), line
    return proc, line.split()[-1]


def stop_intake(proc):
    proc.stdin.close()
    out = proc.stdout.read()
    proc.wait(timeout=30)
    return json.loads(out.strip().splitlines()[-1])


def destination_env(intake_url, ndjson):
    return {
        "DT_CONNECTION_BASE_URL": intake_url,
        "DT_LOG_COLLECTION_AUTH_TOKEN": "T",
        "TRACEHOSE_FILE": ndjson,
        "TRACEHOSE_ACCESS_KEYS": f"old-key,{KEY}",
    }


def body_for(request_id, records=None):
    body = dict(SAMPLE, requestId=request_id)
    if records is not None:
        body["records"] = records
    return json.dumps(body).encode()


def firehose_headers(request_id, key=KEY, gzip_body=False, common=None):
    headers = {
        "content-type": "application/json",
        "x-amz-firehose-protocol-version": "1.0",
        "x-amz-firehose-request-id": request_id,
        "x-amz-firehose-source-arn": ARN,
    }
    if key is not None:
        headers["x-amz-firehose-access-key"] = key
    if gzip_body:
        headers["content-encoding"] = "gzip"
    if common:
        headers["x-amz-firehose-common-attributes"] = json.dumps({"commonAttributes": common})
    return headers


def post(url, body, headers):
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.headers["content-type"], json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, err.headers["content-type"], json.loads(err.read())


def spec_body(body, request_id, error):
    assert body["requestId"] == request_id, body
    assert isinstance(body["timestamp"], int) and body["timestamp"] > 1_600_000_000_000, body
    assert ("errorMessage" in body) == error, body


def ndjson(path):
    if not os.path.exists(path):
        return []
    return [json.loads(line) for line in open(path)]


CASES = []


def case(fn):
    CASES.append(fn)
    return fn


# ---------------------------------------------------------------- Lambda face (cargo lambda watch)

def function_url_event(body, headers, base64_body=None):
    encoded = base64_body if base64_body is not None else base64.b64encode(body).decode()
    return {
        "version": "2.0", "routeKey": "$default", "rawPath": "/", "rawQueryString": "", "headers": headers,
        "requestContext": {"accountId": "anonymous", "http": {"method": "POST", "path": "/", "sourceIp": "52.0.0.1"},
                           "requestId": str(uuid.uuid4()), "timeEpoch": int(time.time() * 1000)},
        "body": encoded, "isBase64Encoded": True,
    }


class Lambda:
    def __init__(self, intake_url):
        self.port = free_port()
        self.ndjson = os.path.join(WORK, "lambda.ndjson")
        env = destination_env(intake_url, self.ndjson)
        env["TRACEHOSE_ENDPOINT_MAX_BODY_BYTES"] = "200000"
        args = ["cargo", "lambda", "watch", "--quiet", "--ignore-changes", "-P", str(self.port),
                "-p", "tracehose-forwarder", "--bin", "tracehose"]
        # A file, not --env-var: that splits values at commas, and the key list has one.
        env_file = os.path.join(WORK, "lambda.env")
        with open(env_file, "w") as f:
            f.writelines(f"{k}={v}\n" for k, v in env.items())
        args += ["--env-file", env_file]
        self.log = open(os.path.join(WORK, "watch.log"), "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc, "cargo lambda watch")

    def invoke(self, event):
        path = os.path.join(WORK, "event.json")
        json.dump(event, open(path, "w"))
        out = subprocess.run(["cargo", "lambda", "invoke", "tracehose", "-P", str(self.port), "--data-file", path,
                              "--output-format", "json"], capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stderr
        response = json.loads(out.stdout)
        assert response["headers"]["content-type"] == "application/json", response
        assert response["isBase64Encoded"] is False, response
        return response["statusCode"], json.loads(response["body"])

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def lambda_cases(lam):
    status, body = lam.invoke(function_url_event(gzip.compress(body_for("fu-gzip")),
                                                 firehose_headers("fu-gzip", gzip_body=True)))
    assert status == 200, body
    spec_body(body, "fu-gzip", False)
    lines = ndjson(lam.ndjson)
    assert len(lines) == 7, len(lines)
    assert sum("trace_id" in l for l in lines) == 6, lines
    assert all(l["attributes"].get("aws.firehose.arn") == ARN for l in lines), lines[0]

    status, body = lam.invoke(function_url_event(body_for("fu-plain"), firehose_headers("fu-plain")))
    assert status == 200, body
    assert len(ndjson(lam.ndjson)) == 14

    for key in ("wrong", None):
        status, body = lam.invoke(function_url_event(body_for("fu-key"), firehose_headers("fu-key", key=key)))
        assert status == 401, body
        spec_body(body, "fu-key", True)
    big = body_for("fu-big", records=[{"data": base64.b64encode(os.urandom(200_000)).decode()}])
    status, body = lam.invoke(function_url_event(big, firehose_headers("fu-big")))
    assert status == 413, body
    status, body = lam.invoke(function_url_event(b'{"requestId":"fu-json","records":[', firehose_headers("fu-json")))
    assert status == 400, body
    spec_body(body, "fu-json", True)
    status, body = lam.invoke(function_url_event(b"", firehose_headers("fu-b64"), base64_body="%%% not base64"))
    assert status == 400 and "base64" in body["errorMessage"], body
    assert len(ndjson(lam.ndjson)) == 14, "nothing refused was processed"


# ---------------------------------------------------------------- serve

class Serve:
    def __init__(self, intake_url, extra_env=None):
        self.ndjson = os.path.join(WORK, f"serve-{uuid.uuid4().hex[:6]}.ndjson")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "TRACEHOSE_", "DT_", "DD_", "OTEL_"))}
        env.update(destination_env(intake_url, self.ndjson))
        env.update(extra_env or {})
        self.log_path = os.path.join(WORK, "serve.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([BINARY, "serve", "--listen", "127.0.0.1:0"], env=env, stderr=self.log)
        deadline = time.time() + 60
        self.url = None
        while self.url is None and time.time() < deadline:
            for line in open(self.log_path):
                if "listening on " in line:
                    self.url = line.split("listening on ")[1].strip() + "/"
            if self.proc.poll() is not None:
                raise RuntimeError(open(self.log_path).read())
            time.sleep(0.1)
        assert self.url, "serve did not print its address"

    def post(self, body, headers):
        return post(self.url, body, headers)

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


def serve_cases(srv):
    status, ctype, body = srv.post(gzip.compress(body_for("s-gzip")), firehose_headers("s-gzip", gzip_body=True,
                                   common={"team": "payments"}))
    assert (status, ctype) == (200, "application/json"), body
    spec_body(body, "s-gzip", False)
    lines = ndjson(srv.ndjson)
    assert len(lines) == 7 and all(l["attributes"].get("team") == "payments" for l in lines), lines[0]
    status, _, body = srv.post(body_for("s-gzip"), firehose_headers("s-gzip"))
    assert status == 200 and len(ndjson(srv.ndjson)) == 7, "a delivered request id is not shipped again"
    for key in ("wrong", None):
        status, _, body = srv.post(body_for("s-key"), firehose_headers("s-key", key=key))
        assert status == 401, body
    status, _, body = srv.post(b"{not json", firehose_headers("s-json"))
    assert status == 400, body
    status, _, body = srv.post(body_for("s-b64", records=[{"data": "%%%"}]), firehose_headers("s-b64"))
    assert status == 400 and "base64" in body["errorMessage"], body


# ---------------------------------------------------------------- moto: genuine subscription payloads

def moto_payloads(endpoint):
    logs, s3, firehose, iam = clients(endpoint, "logs", "s3", "firehose", "iam")
    role = iam.create_role(RoleName="cwl", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    s3.create_bucket(Bucket="delivered")
    stream = firehose.create_delivery_stream(
        DeliveryStreamName="e2e", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": "arn:aws:s3:::delivered"},
    )["DeliveryStreamARN"]
    group, log_stream = "/aws/lambda/e2e-app", "2026/11/21/[$LATEST]0123456789abcdef0123456789abcdef"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName=log_stream)
    logs.put_subscription_filter(logGroupName=group, filterName="to-firehose", filterPattern="",
                                 destinationArn=stream, roleArn=role)
    rid = "8f507cfc-1a2b-4697-b07a-ac58fc914c95"
    now = int(time.time() * 1000)
    messages = [
        f"START RequestId: {rid} Version: $LATEST",
        f"2026-11-21T10:00:00.123Z\t{rid}\tINFO\tcharging card",
        f"[!dt dt.trace_id=0af7651916cd43dd8448eb211c80319c,dt.span_id=00f067aa0ba902b7] tracehose invocation RequestId: {rid}",
        f"2026-11-21T10:00:00.200Z\t{rid}\tINFO\tcard charged",
        f"END RequestId: {rid}",
    ]
    logs.put_log_events(logGroupName=group, logStreamName=log_stream,
                        logEvents=[{"timestamp": now + i, "message": m} for i, m in enumerate(messages)])
    objects = s3.list_objects_v2(Bucket="delivered").get("Contents", [])
    assert objects, "moto delivered nothing to S3"
    records = [s3.get_object(Bucket="delivered", Key=o["Key"])["Body"].read() for o in objects]
    return stream, records, len(messages)


def moto_case(intake_url):
    with moto_server() as endpoint:
        stream, records, count = moto_payloads(endpoint)
    srv = Serve(intake_url)
    try:
        request_id = str(uuid.uuid4())
        body = json.dumps({"requestId": request_id, "timestamp": int(time.time() * 1000),
                           "records": [{"data": base64.b64encode(r).decode()} for r in records]}).encode()
        headers = firehose_headers(request_id, gzip_body=True)
        headers["x-amz-firehose-source-arn"] = stream
        status, _, reply = srv.post(gzip.compress(body), headers)
        assert status == 200, reply
        lines = ndjson(srv.ndjson)
        app = [l for l in lines if l["log_group"] == "/aws/lambda/e2e-app"]
        assert len(app) == count, lines
        assert all(l.get("trace_id") == "0af7651916cd43dd8448eb211c80319c" for l in app), app
        assert all(l["attributes"]["aws.firehose.arn"] == stream for l in app), app[0]
    finally:
        assert srv.terminate() == 0


def main():
    intake, intake_url = start_intake()
    cases = Cases()
    run = cases.run
    srv = Serve(intake_url)
    run("serve: gzip and plain, keys, common attributes, malformed JSON and base64, a retried id", serve_cases, srv)

    def sigterm():
        code = srv.terminate()
        assert code == 0, code
        log = open(srv.log_path).read()
        assert "serve: stopped" in log, log
        try:
            socket.create_connection(("127.0.0.1", int(srv.url.rsplit(":", 1)[1].strip("/"))), timeout=2).close()
            raise AssertionError("still listening after SIGTERM")
        except ConnectionRefusedError:
            pass
    run("serve: SIGTERM stops gracefully and closes the listener", sigterm)

    def refuses_without_key():
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACEHOSE_")}
        out = subprocess.run([BINARY, "serve", "--listen", "127.0.0.1:0"], env=env, capture_output=True, text=True,
                             timeout=60)
        assert out.returncode == 2 and "--insecure-no-access-key" in out.stderr, out.stderr
    run("serve: refuses to start with no access key", refuses_without_key)

    run("moto: CloudWatch Logs -> Firehose -> S3 payloads POSTed to serve are delivered correlated", moto_case,
        intake_url)

    lam = Lambda(intake_url)
    try:
        run("lambda: function URL events (gzip, plain, keys, oversize, malformed JSON and base64)", lambda_cases, lam)
    finally:
        lam.stop()

    summary = stop_intake(intake)
    def intake_clean():
        assert not summary["violations"], summary["violations"]
        assert summary["entries_accepted"].get("dynatrace", 0) >= 7 * 3, summary
    run("intake: every delivery met the Dynatrace contract", intake_clean)
    return cases.done("endpoint suite")


if __name__ == "__main__":
    sys.exit(main())
