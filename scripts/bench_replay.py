"""Replay throughput against moto, next to the core pipeline on the same bytes in the same run.

Generates Firehose backup objects (JSON lines, `rawData` = base64 of gzip of a subscription payload of
Lambda log lines, every other object gzipped whole) into a moto S3 bucket, in two layouts of the same
bytes: many small objects and a few large ones. Then, for each layout, times:
  - `tracehose process` on the same objects as local files (the core pipeline: decode, parse, correlate,
    NDJSON), output to /dev/null;
  - `tracehose replay s3://... --to destinations` (NDJSON on stdout, to /dev/null);
and reports records/s, MB/s (object bytes as stored) and peak RSS of each, and replay's share of the
pipeline's throughput. Not a test: no assertion, run by hand (scripts/bench-replay.sh).

More than one binary may be named (`bench_replay.py BEFORE AFTER`): each is run on the same objects, in turn,
so that a change is measured against its baseline in the same run.
"""

import base64
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "deploy"))
from harness import moto_server  # noqa: E402
from replay_moto import Env  # noqa: E402

BINARIES = sys.argv[1:]
TOTAL_MB = int(os.environ.get("BENCH_MB", "120"))
EVENTS_PER_RECORD = 60


def lambda_payload(rng, n):
    request = "%08x-%04x-%04x-%04x-%012x" % tuple(rng.getrandbits(b) for b in (32, 16, 16, 16, 48))
    trace = "%032x" % rng.getrandbits(128)
    events = [f"START RequestId: {request} Version: $LATEST"]
    for i in range(n - 3):
        if i % 10 == 0:
            events.append(f"[!dt dt.trace_id={trace},dt.span_id={rng.getrandbits(64):016x}] handled item {i}")
        else:
            events.append(
                f"2026-01-02T03:04:05.{i:03d}Z\t{request}\tINFO\tprocessed order {rng.getrandbits(40)} "
                f"for customer {rng.getrandbits(24)} in {rng.random() * 100:.2f} ms status=ok"
            )
    events.append(f"END RequestId: {request}")
    events.append(
        f"REPORT RequestId: {request}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 512 MB\t"
        f"Max Memory Used: 80 MB\tXRAY TraceId: 1-{trace[:8]}-{trace[8:]}\tSegmentId: {rng.getrandbits(64):016x}\tSampled: true"
    )
    return {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/bench",
        "logStream": f"2026/01/02/[$LATEST]{rng.getrandbits(64):016x}",
        "subscriptionFilters": ["f"],
        "logEvents": [{"id": str(i), "timestamp": 1767322800000 + i, "message": m} for i, m in enumerate(events)],
    }


def records(total_bytes, seed=7):
    rng = random.Random(seed)
    out, size, n = [], 0, 0
    while size < total_bytes:
        raw = base64.b64encode(gzip.compress(json.dumps(lambda_payload(rng, EVENTS_PER_RECORD)).encode(), 6)).decode()
        line = json.dumps({
            "attemptsMade": 5, "arrivalTimestamp": 1767322800000, "errorCode": "HttpEndpoint.DestinationException",
            "errorMessage": "down", "attemptEndingTimestamp": 1767322900000, "rawData": raw,
            "subsequenceNumber": 0, "dataId": f"bench.{n}",
        })
        out.append(line)
        size += len(line) + 1
        n += 1
    return out


def layout(lines, objects):
    n = len(lines)
    bodies = []
    for i in range(objects):
        body = ("\n".join(lines[i * n // objects:(i + 1) * n // objects]) + "\n").encode()
        bodies.append(gzip.compress(body, 1) if i % 2 else body)
    return bodies


def timed(cmd, env):
    """Seconds and peak RSS (MB) of `cmd`. The RSS comes from GNU time, whose child is a fork of a small
    process: a child forked from this Python process would count the fixtures it holds until its exec."""
    with tempfile.NamedTemporaryFile(mode="r", suffix=".rss") as rss:
        start = time.perf_counter()
        proc = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        elapsed = time.perf_counter() - start
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[1]} exited {proc.returncode}: {proc.stderr[-2000:]}")
        return elapsed, int(rss.read().split()[-1]) / 1024, proc.stderr


def main():
    with moto_server() as endpoint:
        env = Env(endpoint)
        lines = records(TOTAL_MB * 1_000_000)
        print(f"{len(lines)} backup records, {len(lines) * EVENTS_PER_RECORD} log events", flush=True)
        rows = []
        for name, objects in (("many small objects", 200), ("few large objects", 4)):
            bodies = layout(lines, objects)
            stored = sum(len(b) for b in bodies)
            bucket = env.bucket()
            tmp = tempfile.mkdtemp(prefix="bench-replay-")
            files = []
            for i, body in enumerate(bodies):
                env.put(bucket, f"err/http-endpoint-failed/2026/01/02/03/o-{i:04d}", body)
                files.append(os.path.join(tmp, f"o-{i:04d}"))
                with open(files[-1], "wb") as f:
                    f.write(body)
            largest = max(len(b) for b in bodies) / 1e6
            base_env = env.env()
            for binary in BINARIES:
                pipe_s, pipe_rss, _ = timed([binary, "process", *files], base_env)
                replay_s, replay_rss, err = timed([binary, "replay", f"s3://{bucket}/"], base_env)
                assert f"records={len(lines)}" in err, err
                # glibc gives each thread that allocates an arena of its own; the pipeline moving between the
                # delivery stage's blocking threads leaves free memory in several. Capped, for comparison:
                _, arena_rss, _ = timed([binary, "replay", f"s3://{bucket}/"], dict(base_env, MALLOC_ARENA_MAX="2"))
                rows.append((binary, name, objects, stored / 1e6, largest, pipe_s, pipe_rss, replay_s, replay_rss,
                             arena_rss))
        print()
        print("| binary | layout | objects | MB stored | largest object MB | pipeline rec/s | pipeline MB/s | pipeline peak RSS MB "
              "| replay rec/s | replay MB/s | replay peak RSS MB (MALLOC_ARENA_MAX=2) | replay / pipeline |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for binary, name, objects, mb, largest, ps, prss, rs, rrss, arss in rows:
            print(
                f"| {binary} | {name} | {objects} | {mb:.0f} | {largest:.1f} | {len(lines) / ps:,.0f} | {mb / ps:.1f} | {prss:.0f} "
                f"| {len(lines) / rs:,.0f} | {mb / rs:.1f} | {rrss:.0f} ({arss:.0f}) | {ps / rs:.0%} |"
            )


if __name__ == "__main__":
    main()
