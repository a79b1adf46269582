#!/usr/bin/env python3
"""Builds the encoded sample inputs from the readable sources in samples/src/.

Each source is a JSON file describing one input file: its shape and the CloudWatch Logs payloads inside it,
with log lines written as plain strings. Encoded forms (base64, gzip, Firehose envelopes, S3 objects, backup
lines) are generated here so anyone can add a case by writing a source and running:

    python3 samples/generate.py          # writes samples/events/ and samples/broken/
    python3 samples/generate.py --check  # fails if a generated file is out of date

Output is deterministic (gzip mtime 0, fixed ids), so regenerating an unchanged source changes nothing.
Source fields:
  output      file name; written under samples/broken/ when "broken" is true, else samples/events/
  shape       direct | firehose-transformation | firehose-http | payload | payload-gzip | s3-object |
              backup | backup-gzip | verbatim
  payloads    list of payloads: {logGroup, logStream, owner, messageType, start (epoch ms), events}; an event
              is a string (timestamps step 5 ms from start) or [offset_ms, string]. A payload may instead be
              {"literal": "<record data as is>"}, {"gzip_bomb": <inflated bytes>}, {"truncated": <payload>}
              or {"json": <any JSON value, gzipped>}.
  text        for verbatim: the file's content
  Firehose fields: deliveryStreamArn, region, invocationId, requestId, timestamp
"""
import base64
import gzip
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent
ID_BASE = 36765107398567457283592375092183432929398395846291603456


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


def payload_json(p: dict) -> bytes:
    start = p.get("start", 1795255200000)
    events = []
    for i, ev in enumerate(p.get("events", [])):
        offset, message = (ev if isinstance(ev, list) else (i * 5, ev))
        events.append({"id": str(ID_BASE + start + offset), "timestamp": start + offset, "message": message})
    body = {
        "messageType": p.get("messageType", "DATA_MESSAGE"),
        "owner": p.get("owner", "123456789012"),
        "logGroup": p.get("logGroup", ""),
        "logStream": p.get("logStream", ""),
        "subscriptionFilters": p.get("subscriptionFilters", ["tracehose"]),
        "logEvents": events,
    }
    if "policyLevel" in p:
        body["policyLevel"] = p["policyLevel"]
    return json.dumps(body, separators=(",", ":")).encode()


def record_bytes(p: dict) -> bytes:
    """The gzipped payload bytes of a record (before base64)."""
    if "gzip_bomb" in p:
        return gz(b"\0" * p["gzip_bomb"])
    if "truncated" in p:
        full = gz(payload_json(p["truncated"]))
        return full[: len(full) // 2]
    if "json" in p:
        return gz(json.dumps(p["json"]).encode())
    return gz(payload_json(p))


def record_data(p: dict) -> str:
    if "literal" in p:
        return p["literal"]
    return base64.b64encode(record_bytes(p)).decode()


def build(src: dict) -> bytes:
    shape = src["shape"]
    payloads = src.get("payloads", [])
    if shape == "verbatim":
        return src["text"].encode()
    if shape == "direct":
        (p,) = payloads
        return pretty({"awslogs": {"data": record_data(p)}})
    if shape == "firehose-transformation":
        records = [
            {"recordId": f"49546986683135544286507457936321625675700192471156785{i:03d}",
             "approximateArrivalTimestamp": src.get("timestamp", 1795255260000), "data": record_data(p)}
            for i, p in enumerate(payloads)
        ]
        return pretty({"invocationId": src.get("invocationId", "invocationIdExample"),
                       "deliveryStreamArn": src["deliveryStreamArn"], "region": src["region"], "records": records})
    if shape == "firehose-http":
        return pretty({"requestId": src["requestId"], "timestamp": src.get("timestamp", 1795255260000),
                       "records": [{"data": record_data(p)} for p in payloads]})
    if shape == "payload":
        return b"".join(payload_json(p) for p in payloads)
    if shape == "payload-gzip":
        return gz(b"".join(payload_json(p) for p in payloads))
    if shape == "s3-object":
        # Firehose concatenates the records it received: gzip members back to back.
        return b"".join(record_bytes(p) for p in payloads)
    if shape in ("backup", "backup-gzip"):
        lines = []
        for i, p in enumerate(payloads):
            if "broken_line" in p:
                lines.append(p["broken_line"])
                continue
            lines.append(json.dumps({
                "attemptsMade": 5, "arrivalTimestamp": 1795255260000 + i,
                "errorCode": "HttpEndpoint.DestinationException",
                "errorMessage": "The endpoint returned 503", "attemptEndingTimestamp": 1795255380000 + i,
                "rawData": record_data(p), "subsequenceNumber": 0,
                "dataId": f"49607357361271740811418664280693044274821622880012337186.{i}",
            }, separators=(",", ":")))
        data = ("\n".join(lines) + "\n").encode()
        return gz(data) if shape == "backup-gzip" else data
    raise SystemExit(f"unknown shape {shape!r}")


def pretty(value) -> bytes:
    return (json.dumps(value, indent=2) + "\n").encode()


def main() -> int:
    check = "--check" in sys.argv[1:]
    stale = []
    for path in sorted((ROOT / "src").glob("*.json")):
        src = json.loads(path.read_text())
        folder = ROOT / ("broken" if src.get("broken") else "events")
        target = folder / src["output"]
        data = build(src)
        if check:
            if not target.exists() or target.read_bytes() != data:
                stale.append(str(target.relative_to(ROOT.parent)))
        else:
            folder.mkdir(exist_ok=True)
            if not target.exists() or target.read_bytes() != data:
                target.write_bytes(data)
                print(f"wrote {target.relative_to(ROOT.parent)}")
    if stale:
        print("out of date (run python3 samples/generate.py):", *stale, sep="\n  ")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
