#!/usr/bin/env bash
# The whole test suite: the quality bar (fmt, clippy), every crate's tests, then the end-to-end suites in
# tests/suites/, each of which installs what it needs itself. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test"
cargo test --workspace --locked

for suite in tests/suites/*.sh; do
  [ -e "$suite" ] || continue
  step "suite ${suite#tests/suites/}"
  bash "$suite"
done

step "all suites passed"
