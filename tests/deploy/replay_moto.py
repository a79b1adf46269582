"""End-to-end test of `tracehose replay` against S3 and Firehose served by a moto server.

moto never writes Firehose failure backups, so each case writes backup objects itself (every shape of
docs/formats.md section 6: http-endpoint-failed/ and processing-failed/ JSON lines, plain or gzip, and
CloudWatch-to-S3 objects of gzip members), runs the real binary and checks what reached the destination
(NDJSON on stdout or in TRACEHOSE_FILE, or the objects moto's Firehose wrote), what the checkpoint holds
and which objects are left. A partial PutRecordBatch failure is injected by a small proxy in front of moto.
Hostile cases: a gzip object of nothing but newlines (peak memory measured), an object of records that each
inflate near the cap (stopped at its decompression budget, finished by a re-run with a larger one), two runs
on one checkpoint, checkpoint entries that do not fit the object (past its end, or written for other content
under the key).
Ends with the plain 'N passed, N failed' line; exits non-zero when any case failed.
"""

import base64
import gzip
import http.client
import http.server
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from harness import REGION, Cases, aws_environ, clients, free_port, moto_server, stop

BINARY = sys.argv[1] if len(sys.argv) > 1 else "target/debug/tracehose"
HOUR = "2026/01/02/03"


def payload(messages, group="/aws/lambda/app", stream="2026/01/02/[$LATEST]abc"):
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": group,
        "logStream": stream,
        "subscriptionFilters": ["f"],
        "logEvents": [{"id": str(i), "timestamp": 1767322800000 + i, "message": m} for i, m in enumerate(messages)],
    }


def backup_line(messages, data_id, **extra):
    raw = base64.b64encode(gzip.compress(json.dumps(payload(messages)).encode())).decode()
    line = {
        "attemptsMade": 5,
        "arrivalTimestamp": 1767322800000,
        "errorCode": "HttpEndpoint.DestinationException",
        "errorMessage": "down",
        "attemptEndingTimestamp": 1767322900000,
        "rawData": raw,
        "subsequenceNumber": 0,
        "dataId": data_id,
    }
    line.update(extra)
    return json.dumps(line)


def backup_object(records, gz=False):
    """records: list of (messages, dataId) or a raw string line."""
    lines = [r if isinstance(r, str) else backup_line(*r) for r in records]
    body = ("\n".join(lines) + "\n").encode()
    return gzip.compress(body) if gz else body


def cloudwatch_object(member_payloads):
    """Each member: a list of message lists, the payloads concatenated `}{` inside the member."""
    out = b""
    for payloads in member_payloads:
        out += gzip.compress(b"".join(json.dumps(payload(p)).encode() for p in payloads))
    return out


class Env:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.tmp = tempfile.mkdtemp(prefix="replay-e2e-")
        self.environ = aws_environ(endpoint, strip=("AWS_", "TRACEHOSE_", "OTEL_", "DT_", "DD_"))
        self.s3, self.firehose, self.iam = clients(endpoint, "s3", "firehose", "iam")
        self.buckets = 0

    def bucket(self):
        self.buckets += 1
        name = f"backups-{self.buckets}"
        self.s3.create_bucket(Bucket=name)
        return name

    def put(self, bucket, key, body):
        self.s3.put_object(Bucket=bucket, Key=key, Body=body)

    def keys(self, bucket, prefix=""):
        keys = []
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def path(self, name):
        return os.path.join(self.tmp, name)

    def command(self, *args):
        return [BINARY, "replay", *args]

    def env(self, extra_env=None):
        env = dict(self.environ)
        env.update(extra_env or {})
        return env

    def run(self, *args, extra_env=None, expect_code=0):
        proc = subprocess.run(self.command(*args), env=self.env(extra_env), capture_output=True, text=True, timeout=600)
        if expect_code is not None:
            assert proc.returncode == expect_code, (
                f"exit {proc.returncode}, wanted {expect_code}\nstdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
            )
        return proc


# Runs the binary as the child of a fresh, small interpreter and reports its peak RSS on stderr. A child forked
# straight from this process would start with this process's resident set as its high-water mark (Linux keeps
# it across exec), so its ru_maxrss would say more about boto3 than about tracehose.
PEAK_RSS = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"peak_rss_kib={usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status) % 256)
"""


def run_measured(env, *args, extra_env=None, expect_code=0):
    """Runs `tracehose replay ARGS`; the finished process and its peak RSS in bytes."""
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, *env.command(*args)],
        env=env.env(extra_env), capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == expect_code, f"exit {proc.returncode}, wanted {expect_code}\nstderr: {proc.stderr[-3000:]}"
    peak = [line for line in proc.stderr.splitlines() if line.startswith("peak_rss_kib=")]
    return proc, int(peak[-1].split("=")[1]) * 1024


def blank_bomb(first, last, mib):
    """A gzip object: a line, `mib` MiB of newlines (each an empty line), a line. Written in pieces, so that
    this process never holds the inflated bytes."""
    out = io.BytesIO()
    piece = b"\n" * (1 << 20)
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as gz:
        gz.write(first.encode() + b"\n")
        for _ in range(mib):
            gz.write(piece)
        gz.write(last.encode() + b"\n")
    return out.getvalue()


def write_checkpoint(path, source, entries):
    """A checkpoint file as tracehose writes it: the header, then one entry a line."""
    with open(path, "w") as f:
        for entry in [{"source": source, "version": 2}, *entries]:
            f.write(json.dumps(entry) + "\n")


def identity(env, bucket, key):
    """What a checkpoint entry records of an object: its size and ETag."""
    head = env.s3.head_object(Bucket=bucket, Key=key)
    return {"size": head["ContentLength"], "etag": head["ETag"].strip('"')}


def confirmed_lines(entry):
    """The lines a checkpoint position confirms: all before `next`, and `confirmed` (lines or [first, last])."""
    lines = set(range(1, entry["next"]))
    for item in entry.get("confirmed", []):
        first, last = item if isinstance(item, list) else (item, item)
        lines |= set(range(first, last + 1))
    return lines


def messages_of(ndjson):
    return [json.loads(line)["message"] for line in ndjson.splitlines() if line.strip()]


def stat(stderr, name):
    for line in stderr.splitlines():
        if line.startswith("tracehose: replay "):
            for field in line.split():
                if field.startswith(name + "="):
                    return int(field.split("=")[1])
    raise AssertionError(f"no {name} in {stderr}")


def checkpoint_entries(path):
    entries = []
    with open(path) as f:
        for line in f:
            try:
                entries.append(json.loads(line))
            except ValueError:
                pass
    return entries


CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def every_backup_shape_plain_or_gzip_is_replayed_to_stdout(env):
    b = env.bucket()
    env.put(b, f"err/http-endpoint-failed/{HOUR}/s-1-2026-01-02-03-00-00-a", backup_object([(["h1", "h2"], "d1"), (["h3"], "d2")]))
    env.put(b, f"err/http-endpoint-failed/{HOUR}/s-1-2026-01-02-03-00-01-b", backup_object([(["g1"], "d3"), (["g2"], "d4")], gz=True))
    env.put(
        b,
        f"err/processing-failed/{HOUR}/s-1-2026-01-02-03-00-02-c",
        backup_object([backup_line(["p1"], "d5", lambdaArn="arn:aws:lambda:us-east-1:123456789012:function:t")]),
    )
    env.put(b, f"cw/{HOUR}/s-1-2026-01-02-03-00-03-d", cloudwatch_object([[["c1", "c2"]], [["c3"], ["c4"]]]))
    proc = env.run(f"s3://{b}/")
    assert sorted(messages_of(proc.stdout)) == sorted(["h1", "h2", "h3", "g1", "g2", "p1", "c1", "c2", "c3", "c4"]), proc.stdout
    assert stat(proc.stderr, "objects_done") == 4
    assert stat(proc.stderr, "failed_records") == 0
    assert "delivered=10" in proc.stderr, proc.stderr


@case
def more_than_1000_keys_are_all_listed(env):
    b = env.bucket()
    for i in range(1100):
        env.put(b, f"p/{HOUR}/o-{i:05d}", backup_object([([f"m{i}"], f"id{i}")]))
    proc = env.run(f"s3://{b}/p/", "--concurrency", "8")
    got = messages_of(proc.stdout)
    assert len(got) == 1100 and set(got) == {f"m{i}" for i in range(1100)}, len(got)
    assert stat(proc.stderr, "objects_listed") == 1100


@case
def a_malformed_line_is_reported_with_key_and_line_and_skipped(env):
    b = env.bucket()
    key = f"p/{HOUR}/bad"
    body = backup_object([(["before"], "a"), '{"rawData": "not json', '{"rawData":"@@@","dataId":"x"}', (["after"], "b")])
    env.put(b, key, body)
    proc = env.run(f"s3://{b}/", expect_code=1)
    assert messages_of(proc.stdout) == ["before", "after"], proc.stdout
    assert f"s3://{b}/{key} line 2" in proc.stderr, proc.stderr
    assert f"s3://{b}/{key} line 3" in proc.stderr, proc.stderr
    assert stat(proc.stderr, "failed_records") == 2
    assert stat(proc.stderr, "objects_incomplete") == 1


@case
def records_are_deduplicated_by_data_id_within_a_run(env):
    b = env.bucket()
    env.put(b, f"p/{HOUR}/one", backup_object([(["x"], "same"), (["y"], "other")]))
    env.put(b, f"p/{HOUR}/two", backup_object([(["x"], "same")]))
    proc = env.run(f"s3://{b}/", "--concurrency", "1")
    assert sorted(messages_of(proc.stdout)) == ["x", "y"], proc.stdout
    assert stat(proc.stderr, "duplicates") == 1


@case
def since_and_until_filter_by_the_keys_hour(env):
    b = env.bucket()
    for hour in ("01", "02", "03"):
        env.put(b, f"p/2026/01/02/{hour}/o", backup_object([([f"hour{hour}"], f"id{hour}")]))
    proc = env.run(f"s3://{b}/", "--since", "2026-01-02T02", "--until", "2026-01-02T03:00:00Z")
    assert messages_of(proc.stdout) == ["hour02"], proc.stdout


@case
def dry_run_lists_and_changes_nothing(env):
    b = env.bucket()
    env.put(b, f"p/{HOUR}/a", backup_object([(["a"], "a")]))
    env.put(b, f"p/{HOUR}/b", backup_object([(["b"], "b")]))
    ck = env.path("dry.ckpt")
    proc = env.run(f"s3://{b}/", "--dry-run", "--delete-after", "--checkpoint", ck)
    listed = [line.split("\t") for line in proc.stdout.splitlines()]
    assert [(l[0], l[2]) for l in listed] == [(f"s3://{b}/p/{HOUR}/a", "new"), (f"s3://{b}/p/{HOUR}/b", "new")], proc.stdout
    assert not os.path.exists(ck)
    assert len(env.keys(b)) == 2


@case
def delete_after_deletes_only_objects_delivered_whole(env):
    b = env.bucket()
    env.put(b, f"p/{HOUR}/good", backup_object([(["g"], "g")], gz=True))
    env.put(b, f"p/{HOUR}/bad", backup_object([(["k"], "k"), "garbage"]))
    proc = env.run(f"s3://{b}/", "--delete-after", expect_code=1)
    assert sorted(messages_of(proc.stdout)) == ["g", "k"]
    assert env.keys(b) == [f"p/{HOUR}/bad"], env.keys(b)
    assert stat(proc.stderr, "objects_deleted") == 1


@case
def a_transient_destination_failure_stops_with_the_object_not_done_then_resumes(env):
    b = env.bucket()
    env.put(b, f"p/{HOUR}/a", backup_object([(["t1"], "t1"), (["t2"], "t2")]))
    ck = env.path("transient.ckpt")
    down = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}", "TRACEHOSE_DELIVERY_TIMEOUT_MS": "1500"}
    proc = env.run(f"s3://{b}/", "--checkpoint", ck, "--delete-after", extra_env=down, expect_code=1)
    assert "is not done" in proc.stderr, proc.stderr
    assert not any("done" in e for e in checkpoint_entries(ck)), checkpoint_entries(ck)
    assert env.keys(b) == [f"p/{HOUR}/a"]
    proc = env.run(f"s3://{b}/", "--checkpoint", ck, "--delete-after")
    assert sorted(messages_of(proc.stdout)) == ["t1", "t2"]
    assert env.keys(b) == []


# Each record inflates to just under the per-record cap (1 MiB here); the object's budget (4 MiB) holds four.
BUDGET_CAP, BUDGET_TOTAL, BUDGET_RECORD = 1 << 20, 4 << 20, 900_000


@case
def an_object_of_records_that_each_inflate_near_the_cap_stops_at_its_budget_then_resumes_with_more(env):
    b = env.bucket()
    key = f"p/{HOUR}/inflating"
    records = [([f"r{i}-" + "x" * BUDGET_RECORD], f"r{i}") for i in range(10)]
    env.put(b, key, backup_object(records, gz=True))
    ck = env.path("budget.ckpt")
    small = {"TRACEHOSE_MAX_DECOMPRESSED_BYTES": str(BUDGET_CAP), "TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES": str(BUDGET_TOTAL)}
    proc = env.run(f"s3://{b}/", "--checkpoint", ck, "--delete-after", extra_env=small, expect_code=1)
    sent = [m.split("-")[0] for m in messages_of(proc.stdout)]
    # The fifth record is the one that spends the budget: what was inflated stayed within it, plus that one.
    assert sent == ["r0", "r1", "r2", "r3"], sent
    assert f"s3://{b}/{key}: stopped at line 5, the object is not done" in proc.stderr, proc.stderr[-2000:]
    assert "TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES" in proc.stderr, proc.stderr[-2000:]
    assert (stat(proc.stderr, "objects_over_budget"), stat(proc.stderr, "failed_records")) == (1, 1), proc.stderr[-2000:]
    assert stat(proc.stderr, "objects_done") == 0
    entries = checkpoint_entries(ck)
    assert not any("done" in e for e in entries), entries
    assert confirmed_lines([e for e in entries if "partial" in e][-1]) == {1, 2, 3, 4}, entries
    assert env.keys(b) == [key]
    # A larger budget finishes it from where it stopped; some of it was confirmed by the first run, so
    # --delete-after keeps it.
    larger = dict(small, TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES=str(64 << 20))
    proc = env.run(f"s3://{b}/", "--checkpoint", ck, "--delete-after", extra_env=larger)
    sent = [m.split("-")[0] for m in messages_of(proc.stdout)]
    assert sent == [f"r{i}" for i in range(4, 10)], sent
    assert (stat(proc.stderr, "objects_over_budget"), stat(proc.stderr, "objects_done")) == (0, 1)
    assert any(e.get("done") == key for e in checkpoint_entries(ck)), checkpoint_entries(ck)
    assert env.keys(b) == [key]


@case
def a_run_killed_midway_resumes_without_resending_confirmed_records_or_losing_any(env):
    b = env.bucket()
    expected = set()
    for o in range(300):
        records = [([f"k{o}-{r}"], f"k{o}-{r}") for r in range(40)]
        expected |= {f"k{o}-{r}" for r in range(40)}
        env.put(b, f"p/{HOUR}/o-{o:04d}", backup_object(records, gz=o % 2 == 0))
    ck, first, second = env.path("kill.ckpt"), env.path("first.ndjson"), env.path("second.ndjson")
    # Segments of 7 records: the checkpoint also holds positions inside objects when the run is killed.
    small_segments = {"TRACEHOSE_REPLAY_SEGMENT_RECORDS": "7"}
    proc = subprocess.Popen(
        env.command(f"s3://{b}/", "--checkpoint", ck, "--concurrency", "2"),
        env=env.env({"TRACEHOSE_FILE": first, **small_segments}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    # Killed once some objects are confirmed, wherever the run then is.
    while proc.poll() is None:
        if os.path.exists(ck) and sum(1 for e in checkpoint_entries(ck) if "done" in e) >= 20:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the first run ended by itself ({proc.returncode}) before 20 objects were done"
    confirmed = set()
    for e in checkpoint_entries(ck):
        if "done" in e:
            confirmed |= {f"k{int(e['done'][-4:])}-{r}" for r in range(40)}
        elif "partial" in e:
            o = int(e["partial"][-4:])
            confirmed |= {f"k{o}-{line - 1}" for line in confirmed_lines(e)}
    with open(first) as f:
        sent_first = messages_of(f.read())
    assert confirmed <= set(sent_first)
    assert any("partial" in e for e in checkpoint_entries(ck))
    # The killed run's lock died with it: the re-run is not refused.
    env.run(f"s3://{b}/", "--checkpoint", ck, "--concurrency", "2", extra_env={"TRACEHOSE_FILE": second, **small_segments})
    with open(second) as f:
        sent_second = messages_of(f.read())
    assert not confirmed & set(sent_second), sorted(confirmed & set(sent_second))[:5]
    assert len(sent_second) == len(set(sent_second))
    assert set(sent_first) | set(sent_second) == expected


class FailingProxy:
    """Passes every request to moto, except that in the first `fail_calls` PutRecordBatch calls every other
    record is held back and answered as failed (ServiceUnavailableException), as Firehose does in a partial
    failure: those records never reach moto, so each record must reach it exactly once in the end."""

    def __init__(self, upstream, fail_calls=1, then_all=False):
        self.upstream = upstream.replace("http://", "")
        self.fail_calls = fail_calls
        self.then_all = then_all  # after the first call, every record of every call fails
        self.calls = []  # records per PutRecordBatch call, in order
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                target = self.headers.get("X-Amz-Target", "")
                held = []
                if target.endswith("PutRecordBatch"):
                    request = json.loads(body)
                    records = request["Records"]
                    with proxy.lock:
                        proxy.calls.append(len(records))
                        failing = len(proxy.calls) <= proxy.fail_calls
                        fail_all = proxy.then_all and len(proxy.calls) > 1
                    if fail_all:
                        answer = {"FailedPutCount": len(records), "Encrypted": False, "RequestResponses": [
                            {"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "injected"} for _ in records]}
                        data = json.dumps(answer).encode()
                        self.send_response(200)
                        self.send_header("Content-Type", "application/x-amz-json-1.1")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                    if failing:
                        held = [i for i in range(len(records)) if i % 2 == 1]
                        request["Records"] = [r for i, r in enumerate(records) if i % 2 == 0]
                        body = json.dumps(request).encode()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("content-length", "host")}
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                conn.request("POST", self.path, body=body, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                if held and reply.status == 200:
                    answer = json.loads(data)
                    passed = iter(answer["RequestResponses"])
                    merged = []
                    for i in range(len(held) + len(answer["RequestResponses"])):
                        if i in held:
                            merged.append({"ErrorCode": "ServiceUnavailableException", "ErrorMessage": "injected"})
                        else:
                            merged.append(next(passed))
                    answer["RequestResponses"] = merged
                    answer["FailedPutCount"] = len(held)
                    data = json.dumps(answer).encode()
                self.send_response(reply.status)
                for k, v in reply.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


class S3Proxy:
    """Passes every S3 request to moto; `before_delete()` runs before a DELETE is passed on (to change the
    object between the replay's read and its delete, exactly once and always in that window)."""

    def __init__(self, upstream, before_delete):
        upstream = upstream.replace("http://", "")

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "DELETE":
                    before_delete()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                conn = http.client.HTTPConnection(upstream, timeout=60)
                conn.request(self.command, self.path, body=body, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                self.send_response(reply.status)
                for k, v in reply.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


@case
def an_object_copied_again_after_it_was_read_is_not_deleted(env):
    b = env.bucket()
    key = f"p/{HOUR}/moving"
    env.put(b, key, backup_object([(["m1"], "m1")]))
    newer = backup_object([(["m2"], "m2")])
    proxy = S3Proxy(env.endpoint, before_delete=lambda: env.put(b, key, newer))
    try:
        proc = env.run(f"s3://{b}/", "--delete-after", extra_env={"AWS_ENDPOINT_URL_S3": proxy.url})
    finally:
        proxy.close()
    assert messages_of(proc.stdout) == ["m1"], proc.stdout
    # The delete named the ETag that was read: the new copy, never sent, is still there.
    assert env.keys(b) == [key]
    assert env.s3.get_object(Bucket=b, Key=key)["Body"].read() == newer
    assert (stat(proc.stderr, "objects_deleted"), stat(proc.stderr, "objects_kept")) == (0, 1), proc.stderr
    assert f"s3://{b}/{key}: not deleted: it changed since it was read" in proc.stderr, proc.stderr


def firehose_stream(env, name):
    dest = f"{name}-dest"
    env.s3.create_bucket(Bucket=dest)
    role = f"arn:aws:iam::123456789012:role/{name}"
    env.firehose.create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": role, "BucketARN": f"arn:aws:s3:::{dest}"},
    )
    return dest


def delivered_to_stream(env, dest):
    """Messages of every record moto's Firehose wrote into the destination bucket: records are gzipped
    subscription payloads, back to back."""
    messages = []
    for key in env.keys(dest):
        data = env.s3.get_object(Bucket=dest, Key=key)["Body"].read()
        text = gzip.decompress(data).decode()
        decoder = json.JSONDecoder()
        at = 0
        while at < len(text):
            obj, at = decoder.raw_decode(text, at)
            messages += [e["message"] for e in obj["logEvents"]]
    return messages


@case
def to_firehose_sends_the_original_records_and_resends_only_failed_entries(env):
    b = env.bucket()
    records = [([f"f{i}"], f"fd{i}") for i in range(30)]
    env.put(b, f"err/http-endpoint-failed/{HOUR}/a", backup_object(records[:20], gz=True))
    env.put(b, f"err/http-endpoint-failed/{HOUR}/b", backup_object(records[20:]))
    env.put(b, f"cw/{HOUR}/c", cloudwatch_object([[["cw1"]], [["cw2"], ["cw3"]]]))
    dest = firehose_stream(env, "replayed")
    proxy = FailingProxy(env.endpoint, fail_calls=1)
    try:
        extra = {"AWS_ENDPOINT_URL_FIREHOSE": proxy.url}
        proc = env.run(f"s3://{b}/", "--to", "firehose:replayed", "--concurrency", "1", "--delete-after", extra_env=extra)
    finally:
        proxy.close()
    got = delivered_to_stream(env, dest)
    want = [f"f{i}" for i in range(30)] + ["cw1", "cw2", "cw3"]
    assert sorted(got) == sorted(want), sorted(got)
    first = proxy.calls[0]
    # The call after the partial failure holds exactly the entries that failed, and nothing else.
    assert proxy.calls[1] == first // 2, proxy.calls
    assert stat(proc.stderr, "records") == 32, proc.stderr
    assert env.keys(b) == [], env.keys(b)


@case
def to_firehose_stops_with_the_object_not_done_when_entries_keep_failing(env):
    b = env.bucket()
    env.put(b, f"err/http-endpoint-failed/{HOUR}/a", backup_object([([f"r{i}"], f"rd{i}") for i in range(4)]))
    dest = firehose_stream(env, "refusing")
    ck = env.path("firehose-down.ckpt")
    proxy = FailingProxy(env.endpoint, fail_calls=1, then_all=True)
    try:
        extra = {"AWS_ENDPOINT_URL_FIREHOSE": proxy.url}
        proc = env.run(f"s3://{b}/", "--to", "firehose:refusing", "--checkpoint", ck, "--delete-after", extra_env=extra, expect_code=1)
    finally:
        proxy.close()
    assert "is not done" in proc.stderr and "ServiceUnavailableException" in proc.stderr, proc.stderr
    # Entries 0 and 2 of the first call were accepted (lines 1 and 3); 1 and 3 never were.
    assert sorted(delivered_to_stream(env, dest)) == ["r0", "r2"]
    entries = checkpoint_entries(ck)
    assert not any("done" in e for e in entries), entries
    last = [e for e in entries if "partial" in e][-1]
    assert (last["next"], last.get("confirmed")) == (2, [3]), last
    assert env.keys(b) == [f"err/http-endpoint-failed/{HOUR}/a"]
    # Firehose is back: the re-run sends only what was not confirmed. Lines 1 and 3 were confirmed by the
    # first run, not this one, so --delete-after keeps the object and says why.
    proc = env.run(f"s3://{b}/", "--to", "firehose:refusing", "--checkpoint", ck, "--delete-after")
    assert sorted(delivered_to_stream(env, dest)) == ["r0", "r1", "r2", "r3"]
    assert (stat(proc.stderr, "records"), stat(proc.stderr, "records_resumed")) == (2, 2), proc.stderr
    assert env.keys(b) == [f"err/http-endpoint-failed/{HOUR}/a"]
    assert stat(proc.stderr, "objects_kept") == 1
    assert "not deleted: some of its records were confirmed by an earlier run" in proc.stderr, proc.stderr


# Inflated size of the blank-line bombs: each line 16 bytes of state in the replay before the bound was 2 GiB.
BOMB_MIB = 128
# Peak RSS allowed for a bomb's run: half the inflated size, twice what the debug build measured (about 30 MB).
BOMB_PEAK = (BOMB_MIB << 20) // 2


@case
def a_blank_line_bomb_costs_its_bytes_not_memory(env):
    b = env.bucket()
    key = f"p/{HOUR}/bomb"
    env.put(b, key, blank_bomb(backup_line(["before"], "b1"), backup_line(["after"], "b2"), BOMB_MIB))
    ck = env.path("bomb.ckpt")
    proc, peak = run_measured(env, f"s3://{b}/", "--checkpoint", ck, "--delete-after")
    assert messages_of(proc.stdout) == ["before", "after"], proc.stdout[-500:]
    assert stat(proc.stderr, "blank_lines") == BOMB_MIB << 20, proc.stderr
    assert (stat(proc.stderr, "records"), stat(proc.stderr, "failed_records")) == (2, 0), proc.stderr
    assert stat(proc.stderr, "objects_deleted") == 1
    assert peak < BOMB_PEAK, f"peak RSS {peak} bytes for {BOMB_MIB} MiB of newlines"
    # Segments end on lines too: a checkpoint step at least every 2^20 lines, each one range, not a line each.
    nexts = [e["next"] for e in checkpoint_entries(ck) if "partial" in e]
    assert all(0 < b - a <= 1 << 20 for a, b in zip([1] + nexts, nexts)), nexts[:5]
    assert BOMB_MIB <= len(nexts) <= BOMB_MIB + 3, len(nexts)
    assert not any("confirmed" in e for e in checkpoint_entries(ck)), checkpoint_entries(ck)[:3]


@case
def a_blank_line_bomb_sent_back_into_firehose_costs_its_bytes_not_memory(env):
    b = env.bucket()
    env.put(b, f"p/{HOUR}/bomb", blank_bomb(backup_line(["fb1"], "fb1"), backup_line(["fb2"], "fb2"), BOMB_MIB))
    dest = firehose_stream(env, "bombed")
    proc, peak = run_measured(env, f"s3://{b}/", "--to", "firehose:bombed", "--delete-after")
    assert sorted(delivered_to_stream(env, dest)) == ["fb1", "fb2"]
    assert stat(proc.stderr, "blank_lines") == BOMB_MIB << 20, proc.stderr
    assert stat(proc.stderr, "records") == 2
    assert env.keys(b) == []
    assert peak < BOMB_PEAK, f"peak RSS {peak} bytes for {BOMB_MIB} MiB of newlines"


@case
def a_second_run_on_a_held_checkpoint_exits_2_naming_the_holder_and_sends_nothing(env):
    b = env.bucket()
    expected = []
    for o in range(30):
        records = [([f"lock{o}-{r}"], f"lock{o}-{r}") for r in range(100)]
        expected += [f"lock{o}-{r}" for r in range(100)]
        env.put(b, f"p/{HOUR}/o-{o:04d}", backup_object(records))
    ck = env.path("held.ckpt")
    args = (f"s3://{b}/", "--checkpoint", ck, "--delete-after")
    first = subprocess.Popen(env.command(*args), env=env.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Its first output proves it holds the lock (taken before anything else); it cannot end while the
        # rest of its output (far more than a pipe holds) is unread.
        head = first.stdout.read1(4096)
        assert head, first.stderr.read()
        second = env.run(*args, expect_code=2)
        assert second.stdout == "", second.stdout[:500]
        holder = f"pid {first.pid} on {socket.gethostname()}"
        assert f"checkpoint {ck} is in use by {holder}" in second.stderr, second.stderr
        assert "tracehose replay" in second.stderr, second.stderr
        rest, errors = first.communicate(timeout=600)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, errors.decode()[-2000:]
    sent = messages_of((head + rest).decode())
    assert sorted(sent) == sorted(expected), (len(sent), len(expected))
    assert stat(errors.decode(), "objects_deleted") == 30
    assert env.keys(b) == []
    # Released with the first run: a third run takes the lock, and finds nothing left to send.
    third = env.run(*args)
    assert stat(third.stderr, "objects_listed") == 0 and third.stdout == ""


@case
def a_checkpoint_position_past_the_objects_end_is_reported_and_the_object_replayed(env):
    b = env.bucket()
    key = f"p/{HOUR}/short"
    env.put(b, key, backup_object([(["e1"], "e1"), (["e2"], "e2"), (["e3"], "e3")]))
    ck = env.path("past-end.ckpt")
    # Says line 1 and line 50 were confirmed, of an object of 3 lines: written for something else.
    write_checkpoint(ck, f"s3://{b}/", [{"partial": key, **identity(env, b, key), "next": 2, "confirmed": [50]}])
    proc = env.run(f"s3://{b}/", "--checkpoint", ck, "--delete-after")
    sent = messages_of(proc.stdout)
    assert sorted(sent) == ["e1", "e2", "e3"], sent
    assert "the checkpoint confirms lines past the object's end (line 3); it is replayed from its start" in proc.stderr
    assert stat(proc.stderr, "checkpoint_mismatches") == 1
    # Lines 2 and 3 went in the first pass and were not sent again; line 1 in the second.
    assert (stat(proc.stderr, "records"), stat(proc.stderr, "records_resumed")) == (3, 0), proc.stderr
    # This run confirmed every line itself: the object may go.
    assert env.keys(b) == []
    assert stat(proc.stderr, "objects_deleted") == 1


@case
def a_checkpoint_written_for_other_content_under_the_same_key_is_not_applied(env):
    b = env.bucket()
    same, done, partial = (f"p/{HOUR}/{name}" for name in ("same", "done", "partial"))
    same_body = backup_object([(["s1"], "s1")])
    env.put(b, same, same_body)
    env.put(b, done, backup_object([(["old1"], "old1")]))
    env.put(b, partial, backup_object([(["old2"], "old2"), (["old3"], "old3")]))
    ck = env.path("recopied.ckpt")
    env.run(f"s3://{b}/", "--checkpoint", ck)
    # An earlier run stopped inside `partial` after its first line.
    with open(ck, "a") as f:
        f.write(json.dumps({"partial": partial, **identity(env, b, partial), "next": 2}) + "\n")
    # Copied again: the same bytes under `same` (same ETag), other content under the two others.
    env.put(b, same, same_body)
    env.put(b, done, backup_object([(["new1"], "new1")]))
    env.put(b, partial, backup_object([(["new2"], "new2"), (["new3"], "new3")]))
    listed = env.run(f"s3://{b}/", "--checkpoint", ck, "--dry-run").stdout
    states = {line.split("\t")[0].rsplit("/", 1)[1]: line.split("\t")[2] for line in listed.splitlines()}
    assert states == {"same": "done", "done": "changed since checkpointed: from the start",
                      "partial": "changed since checkpointed: from the start"}, states
    proc = env.run(f"s3://{b}/", "--checkpoint", ck, "--delete-after")
    # new2 is line 1, which the stale position would have skipped.
    assert sorted(messages_of(proc.stdout)) == ["new1", "new2", "new3"], proc.stdout
    assert stat(proc.stderr, "checkpoint_mismatches") == 2
    assert f"s3://{b}/{done}: the checkpoint finished other content" in proc.stderr, proc.stderr
    assert f"s3://{b}/{partial}: the checkpoint's position (line 2) was recorded for other content" in proc.stderr
    # Only what this run confirmed whole is deleted; `same` was finished by the first run.
    assert env.keys(b) == [same], env.keys(b)
    assert (stat(proc.stderr, "objects_deleted"), stat(proc.stderr, "objects_kept")) == (2, 1)
    assert f"s3://{b}/{same}: not deleted: an earlier run finished it" in proc.stderr


def wait_for(path, text, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if os.path.exists(path) and text in open(path, errors="replace").read():
            return
        time.sleep(0.2)
    raise AssertionError(f"no {text!r} in {path} after {seconds} s")


def s3_notification(bucket, key):
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION, "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": key.replace(" ", "+"), "size": 1}},
    }]}


@case
def the_lambda_face_replays_a_notified_object_and_stops_after_max_attempts(env):
    b = env.bucket()
    key = f"err/http-endpoint-failed/{HOUR}/with space"
    env.put(b, key, backup_object([(["l1", "l2"], "l1"), (["l3"], "l3")], gz=True))
    tired = f"err/http-endpoint-failed/{HOUR}/tired"
    env.s3.put_object(Bucket=b, Key=tired, Body=backup_object([(["never"], "n")]), Tagging="tracehose-replay-attempts=2&team=x")
    port = free_port()
    cargo_lambda = os.path.join(os.path.dirname(sys.executable), "cargo-lambda")
    watch_log, out_log, err_log = env.path("watch.log"), env.path("fn.out"), env.path("fn.err")
    procs = []
    try:
        procs.append(subprocess.Popen(
            [cargo_lambda, "lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", str(port)],
            cwd=os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../forwarder"),
            stdout=open(watch_log, "w"), stderr=subprocess.STDOUT,
        ))
        wait_for(watch_log, "starting Runtime server", 60)
        fn_env = env.env({
            "AWS_LAMBDA_RUNTIME_API": f"http://127.0.0.1:{port}/.rt",
            "AWS_LAMBDA_FUNCTION_NAME": "_", "AWS_LAMBDA_FUNCTION_VERSION": "1",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512", "TRACEHOSE_REPLAY_MAX_ATTEMPTS": "2",
        })
        procs.append(subprocess.Popen([BINARY], env=fn_env, stdout=open(out_log, "w"), stderr=open(err_log, "w")))

        def invoke(bucket, k):
            data = json.dumps(s3_notification(bucket, k))
            return subprocess.run(
                [cargo_lambda, "lambda", "invoke", "-A", "127.0.0.1", "-P", str(port), "--data-ascii", data, "_"],
                capture_output=True, text=True, timeout=120,
            )

        done = invoke(b, key)
        assert done.returncode == 0, done.stderr + open(err_log).read()
        answer = json.loads(done.stdout)
        assert answer["replayed"][0]["complete"] is True, answer
        wait_for(out_log, '"message":"l3"', 10)
        # The function's stdout also carries one EMF metrics line per invocation (`_aws`), beside the records.
        out_lines = [json.loads(line) for line in open(out_log).read().splitlines() if line.strip()]
        emf = [line for line in out_lines if "_aws" in line]
        assert emf, "every invocation prints its EMF line"
        assert sorted(line["message"] for line in out_lines if "_aws" not in line) == ["l1", "l2", "l3"]
        tags = env.s3.get_object_tagging(Bucket=b, Key=key)["TagSet"]
        assert {"Key": "tracehose-replay-attempts", "Value": "1"} in tags, tags

        skipped = invoke(b, tired)
        assert skipped.returncode == 0, skipped.stderr
        assert json.loads(skipped.stdout)["replayed"][0]["skipped"] == "too many attempts", skipped.stdout
        assert "not replayed: already tried 2 times" in open(err_log).read()
        assert "never" not in open(out_log).read()
        tags = {t["Key"]: t["Value"] for t in env.s3.get_object_tagging(Bucket=b, Key=tired)["TagSet"]}
        assert tags == {"tracehose-replay-attempts": "3", "team": "x"}, tags
    finally:
        for p in procs:
            stop(p)


def main():
    if not os.access(BINARY, os.X_OK):
        print(f"replay e2e: binary {BINARY} not found", file=sys.stderr)
        return 2
    only = os.environ.get("REPLAY_CASES", "").split(",") if os.environ.get("REPLAY_CASES") else None
    cases = Cases()
    with moto_server() as endpoint:
        env = Env(endpoint)
        for fn in CASES:
            if not only or fn.__name__ in only:
                cases.run(fn.__name__, fn, env)
    return cases.done("replay")


if __name__ == "__main__":
    sys.exit(main())
