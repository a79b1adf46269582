"""Prints, sorted, one line per failed check of a checkov JSON report (stdin): "<check id> <resource>"."""

import json
import sys

report = json.load(sys.stdin)
reports = report if isinstance(report, list) else [report]
lines = set()
for r in reports:
    for failed in r.get("results", {}).get("failed_checks", []):
        lines.add(f"{failed['check_id']} {failed['resource']}")
for line in sorted(lines):
    print(line)
