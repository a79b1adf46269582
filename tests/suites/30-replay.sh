#!/usr/bin/env bash
# `tracehose replay` end to end against a moto server's S3 and Firehose: every backup shape (plain and gzip),
# more than 1,000 keys, malformed lines, de-duplication, time windows, dry run, --delete-after, a transient
# destination failure, a run killed midway and resumed, --to firehose with a partial PutRecordBatch failure
# injected by a proxy, the Lambda face's S3 notification; and hostile cases: a gzip object of 128 MiB of
# newlines (peak RSS bounded, both targets), two runs on one checkpoint, checkpoint entries past an object's
# end or written for other content under its key, an object copied again between its read and its delete.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/python.sh
ensure_venv

cargo build --quiet --locked -p tracehose-forwarder --bin tracehose
source tests/lib/target.sh
python tests/deploy/replay_moto.py "$target_dir/debug/tracehose"
