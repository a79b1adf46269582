#!/usr/bin/env python3
"""What a hostile caller costs `tracehose serve` (issue 15, items 5, 9 and 10), measured, never in CI.

Usage: scripts/bench-bombs.py BINARY [BINARY...]   (scripts/bench-bombs.sh builds and passes the binary)
TRACEHOSE_MAX_DECOMPRESSED_BYTES, when set, is passed on: 1048576 runs the reproducer at 1/64 scale (each
record inflates 1 MiB before it is refused), which keeps an unoptimised build's run short.

For each binary, in the same run, against a local NDJSON destination (/dev/null):
  - a small request (the sample, 7 lines) alone: the baseline every time below is divided by;
  - the review's reproducer: 1,000 records of base64(gzip(gzip(64 MiB of zeros))), about 2 KB gzipped,
    with a 10 s request deadline, under the default decompression budget;
  - the same with the budget unlimited, so that only the deadline stops it, and a small request sent 1 s
    into it;
  - SIGTERM 1 s into the same with --shutdown-timeout 3: time until the process exits;
  - --max-connections idle sockets, then GET /healthz (header timeout 30 s);
  - 801 requests with a wrong key: lines written to stderr.
Times are printed with their ratio to the baseline of the same binary in the same run.
"""

import base64
import gzip
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "bench-key"


def gzip_best(data):
    return gzip.compress(data, compresslevel=9)


def sample_body(request_id):
    with open(os.path.join(ROOT, "samples/events/firehose-http-json-format.json")) as f:
        body = json.load(f)
    body["requestId"] = request_id
    return json.dumps(body).encode()


def bomb_body(request_id, records=1000, inflated=64 << 20):
    record = base64.b64encode(gzip_best(gzip_best(bytes(inflated)))).decode()
    body = {"requestId": request_id, "timestamp": int(time.time() * 1000),
            "records": [{"data": record} for _ in range(records)]}
    return gzip_best(json.dumps(body).encode())


class Serve:
    def __init__(self, binary, args=(), env=None):
        self.log = tempfile.TemporaryFile(mode="w+")
        full_env = {"PATH": os.environ.get("PATH", ""), "TRACEHOSE_ACCESS_KEYS": KEY,
                    "TRACEHOSE_STDOUT": "false", "TRACEHOSE_FILE": "/dev/null",
                    "TRACEHOSE_ENDPOINT_DEDUP_BYTES": "0", "TRACEHOSE_ENDPOINT_DEADLINE_MS": "10000"}
        for name in ("TRACEHOSE_MAX_DECOMPRESSED_BYTES",):
            if name in os.environ:
                full_env[name] = os.environ[name]
        full_env.update(env or {})
        self.proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", *args],
                                     stderr=self.log, env=full_env)
        deadline = time.time() + 30
        while time.time() < deadline:
            self.log.seek(0)
            for line in self.log.read().splitlines():
                if "listening on http://" in line:
                    host, port = line.split("http://")[1].split(":")
                    self.addr = (host, int(port))
                    return
            time.sleep(0.05)
        raise RuntimeError("serve did not start")

    def post(self, request_id, body, key=KEY, gzipped=False, timeout=600):
        conn = http.client.HTTPConnection(*self.addr, timeout=timeout)
        headers = {"X-Amz-Firehose-Protocol-Version": "1.0", "X-Amz-Firehose-Request-Id": request_id,
                   "X-Amz-Firehose-Access-Key": key, "Content-Type": "application/json"}
        if gzipped:
            headers["Content-Encoding"] = "gzip"
        started = time.monotonic()
        try:
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            return response.status, time.monotonic() - started
        except (OSError, http.client.HTTPException):
            return None, time.monotonic() - started
        finally:
            conn.close()

    def healthz(self, timeout=120):
        conn = http.client.HTTPConnection(*self.addr, timeout=timeout)
        started = time.monotonic()
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            return response.status, time.monotonic() - started
        except (OSError, http.client.HTTPException):
            return None, time.monotonic() - started
        finally:
            conn.close()

    def counts(self):
        conn = http.client.HTTPConnection(*self.addr, timeout=30)
        try:
            conn.request("GET", "/healthz")
            return json.loads(conn.getresponse().read()).get("counts", "none (this build reports no counts)")
        finally:
            conn.close()

    def lines(self):
        self.log.seek(0)
        return self.log.read().splitlines()

    def stop(self):
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait()
        return time.monotonic() - started


def in_thread(fn):
    result = {}
    thread = threading.Thread(target=lambda: result.update(value=fn()))
    thread.start()
    return thread, result


UNLIMITED = {"TRACEHOSE_MAX_DECOMPRESSED_TOTAL_BYTES": str(1 << 40)}


def measure(binary, bomb):
    out = {}
    serve = Serve(binary)
    serve.post("warm", sample_body("warm"))
    alone = sorted(serve.post(f"alone-{i}", sample_body(f"alone-{i}"))[1] for i in range(5))[2]
    out["small request alone (s)"] = alone
    out["bomb request, default budget"] = serve.post("bombs", bomb, gzipped=True)
    out["counts after it (GET /healthz)"] = serve.counts()
    serve.stop()

    # Without a total (the budget unlimited), only the 10 s deadline stops the bombs: a small request is
    # sent 1 s into them.
    serve = Serve(binary, env=UNLIMITED)
    thread, result = in_thread(lambda: serve.post("bombs", bomb, gzipped=True))
    time.sleep(1)
    out["small request 1 s into the bombs, budget unlimited"] = serve.post("beside", sample_body("beside"))
    thread.join()
    out["bomb request, budget unlimited (10 s deadline)"] = result["value"]
    serve.stop()

    serve = Serve(binary, ["--shutdown-timeout", "3"], env={**UNLIMITED, "TRACEHOSE_ENDPOINT_DEADLINE_MS": "900000"})
    thread, result = in_thread(lambda: serve.post("bombs", bomb, gzipped=True))
    time.sleep(1)
    out["exit after SIGTERM 1 s into the bombs (--shutdown-timeout 3, budget unlimited)"] = serve.stop()
    thread.join()

    serve = Serve(binary, ["--max-connections", "16", "--header-timeout", "30"])
    idle = [socket.create_connection(serve.addr) for _ in range(16)]
    time.sleep(0.5)
    out["/healthz with 16 idle sockets (header timeout 30 s)"] = serve.healthz()
    for s in idle:
        s.close()
    for _ in range(801):
        serve.post("flood", b"{}", key="wrong")
    serve.stop()
    out["stderr lines about 401 for 801 wrong-key requests"] = sum("401" in l for l in serve.lines())
    return out


def main():
    bomb = bomb_body("bombs")
    print(f"reproducer: {len(bomb)} bytes gzipped, 1000 records, 64 MiB each inflated")
    for binary in sys.argv[1:]:
        print(f"\n{binary}")
        out = measure(binary, bomb)
        alone = out.pop("small request alone (s)")
        print(f"  small request alone: {alone * 1000:.1f} ms (the baseline)")
        for name, value in out.items():
            if isinstance(value, tuple):
                status, seconds = value
                print(f"  {name}: {status}, {seconds:.2f} s = {seconds / alone:.0f}x the baseline")
            elif isinstance(value, float):
                print(f"  {name}: {value:.2f} s = {value / alone:.0f}x the baseline")
            else:
                print(f"  {name}: {value}")


if __name__ == "__main__":
    main()
