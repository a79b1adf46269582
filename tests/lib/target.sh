# Sourced by suites: `target_dir`, where cargo puts what it builds (CARGO_TARGET_DIR and .cargo/config honoured),
# so that suites find the binaries they built wherever that is.
target_dir=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
