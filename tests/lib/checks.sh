# Sourced by suites: `check NAME COMMAND...` runs one check, prints ok/FAIL and counts it; `checks_done SUITE`
# prints the closing line (`SUITE: N passed, N failed`) and returns non-zero when any check failed.
passed=0
failed=0

check() {
  local name=$1
  shift
  if "$@"; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
  fi
}

checks_done() {
  echo "$1: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
