"""What the end-to-end drivers share: free ports, a moto server, the AWS environment that points the real
binary at it, and the cases' `ok`/`FAIL` lines with the closing 'SUITE: N passed, N failed'."""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.request

REGION = "us-east-1"
FAKE_KEYS = dict(aws_access_key_id="testing", aws_secret_access_key="testing")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, limit=600):
    """Waits until something listens on `port`, failing early when `proc` exits."""
    deadline = time.time() + limit
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{what} did not listen within {limit} s")


def stop(proc, grace=10):
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def moto_server():
    """A moto server on a free local port, from the virtualenv running this script; yields its endpoint URL."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="moto-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited early, see {log.name}")
            try:
                urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError(f"moto_server did not answer within 30 s, see {log.name}")
                time.sleep(0.2)
        yield endpoint
    finally:
        stop(proc)


def aws_environ(endpoint, strip=("AWS_", "TRACEHOSE_")):
    """This process's environment without variables starting with `strip`, pointed at `endpoint` with fake
    credentials, and with no AWS config file or instance metadata to fall back on."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(strip)}
    environ.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID=FAKE_KEYS["aws_access_key_id"],
        AWS_SECRET_ACCESS_KEY=FAKE_KEYS["aws_secret_access_key"],
        AWS_REGION=REGION,
        AWS_EC2_METADATA_DISABLED="true",
        AWS_CONFIG_FILE="/dev/null",
        AWS_SHARED_CREDENTIALS_FILE="/dev/null",
    )
    return environ


def clients(endpoint, *services):
    """boto3 clients for `services`, talking to `endpoint`."""
    import boto3

    return tuple(boto3.client(s, endpoint_url=endpoint, region_name=REGION, **FAKE_KEYS) for s in services)


class Cases:
    """Runs cases one by one, printing `ok NAME` or `FAIL NAME` and the traceback; a failure never stops the
    cases after it."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, name, fn, *args):
        try:
            fn(*args)
            self.passed += 1
            print(f"ok   {name}", flush=True)
        except Exception:
            self.failed += 1
            print(f"FAIL {name}", flush=True)
            traceback.print_exc(file=sys.stdout)

    def done(self, suite):
        """Prints the closing line; the process's exit code."""
        print(f"{suite}: {self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 else 1
