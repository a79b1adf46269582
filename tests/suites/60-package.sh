#!/usr/bin/env bash
# scripts/package.sh for x86_64: the zips build with cargo-lambda, stay within their size budgets (the script
# fails otherwise), have the layout Lambda expects, every runtime Terraform lists for them can load them (the
# script fails otherwise; here we also make sure it checked each one), and the packaged forwarder runs. Then
# the load check itself on small binaries built with zig, so that it cannot pass by checking nothing: it must
# refuse a glibc too new for a runtime, a library no runtime has, the wrong machine and an unknown runtime, and
# accept a static executable.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/python.sh
ensure_venv

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash scripts/package.sh --arch x86_64 --out "$out" | tee "$out/package.log"

python - "$out" <<'PY'
import pathlib, stat, sys, zipfile

out = pathlib.Path(sys.argv[1])
failures = 0

def check(zip_path, wanted):
    global failures
    with zipfile.ZipFile(zip_path) as z:
        names = [i.filename for i in z.infolist() if not i.filename.endswith("/")]
        mode = z.getinfo(wanted).external_attr >> 16 if wanted in names else 0
    problems = []
    if names != [wanted]:
        problems.append(f"holds {names}, wanted exactly [{wanted!r}]")
    if not mode & stat.S_IXUSR:
        problems.append(f"{wanted} is not executable (mode {oct(mode)})")
    for p in problems:
        print(f"FAIL {zip_path.name}: {p}")
    failures += bool(problems)
    if not problems:
        print(f"ok   {zip_path.name}: {wanted}, executable")

check(out / "tracehose-forwarder-x86_64.zip", "bootstrap")
layer = out / "tracehose-extension-layer-x86_64.zip"
if (pathlib.Path("extension") / "Cargo.toml").exists():
    check(layer, "extensions/tracehose-extension")
sys.exit(1 if failures else 0)
PY

# The package step passed, so no runtime failed; it must also have checked every runtime Terraform lists.
checked() { # zip runtime...
  local zip=$1 runtime
  shift
  for runtime in "$@"; do
    if ! awk -v zip="$zip:" -v rt="$runtime" '
      index($0, zip) == 1 { inside = 1; next }
      /^[^ ]/ { inside = 0 }
      inside && $1 == "ok" { for (i = 2; i <= NF; i++) { f = $i; sub(/,$/, "", f); if (f == rt) found = 1 } }
      END { exit !found }' "$out/package.log"; then
      echo "FAIL package.sh did not report $runtime as able to load $zip" >&2
      exit 1
    fi
  done
  echo "ok   $zip: checked for $*"
}
mapfile -t forwarder_runtimes < <(python scripts/check_loadable.py runtimes forwarder)
checked tracehose-forwarder-x86_64.zip "${forwarder_runtimes[@]}"
if [ -e extension/Cargo.toml ]; then
  mapfile -t layer_runtimes < <(python scripts/check_loadable.py runtimes layer)
  checked tracehose-extension-layer-x86_64.zip "${layer_runtimes[@]}"
fi

# The packaged binary is the CLI outside Lambda: it must start and know its commands.
unzip -q -o "$out/tracehose-forwarder-x86_64.zip" -d "$out/forwarder"
"$out/forwarder/bootstrap" subscribe --help | grep -q -- "--destination"

# The load check on binaries whose needs are known. zig (from cargo-lambda's Python package) links them; the
# glibc versions are the ones the packages were just linked against, already in zig's cache.
cc() { python -m ziglang cc "$@"; }
mkdir -p "$out/cases"
cd "$out/cases"
cat >gettid.c <<'C'
#define _GNU_SOURCE
#include <unistd.h>
int main(void) { return gettid() > 0 ? 0 : 1; }
C
printf 'int extra(void) { return 0; }\n' >extra.c
printf 'int extra(void);\nint main(void) { return extra(); }\n' >needs-extra.c
cat >static.c <<'C'
void _start(void) { __asm__ volatile("mov $60, %eax\n xor %edi, %edi\n syscall"); }
C
cc -target x86_64-linux-gnu.2.34 -o gettid gettid.c           # gettid@GLIBC_2.30
cc -target x86_64-linux-gnu.2.34 -shared -o libextra.so extra.c
cc -target x86_64-linux-gnu.2.34 -o needs-extra needs-extra.c -L. -lextra
cc -target x86_64-linux-gnu.2.26 -nostdlib -static -o static static.c
mkdir -p extensions && cp gettid extensions/ && python -m zipfile -c gettid.zip extensions
cd - >/dev/null

expect() { # want-status grep-pattern checker-args...
  local want=$1 pattern=$2 status=0
  shift 2
  python scripts/check_loadable.py "$@" >"$out/check.log" 2>&1 || status=$?
  if [ "$status" -ne "$want" ] || ! grep -q -- "$pattern" "$out/check.log"; then
    echo "FAIL check_loadable $*: exit $status (wanted $want), output without '$pattern':" >&2
    cat "$out/check.log" >&2
    exit 1
  fi
  echo "ok   check_loadable ${*#"$out/cases/"}: exit $status, $pattern"
}
c=$out/cases
expect 1 'FAIL provided.al2, java17 (Amazon Linux 2, glibc 2.26): cannot load extensions/gettid: needs GLIBC_2.30 from libc.so.6 (gettid)' \
  check --arch x86_64 "$c/gettid.zip" provided.al2 java17 provided.al2023
expect 1 'ok   provided.al2023' check --arch x86_64 "$c/gettid.zip" provided.al2 provided.al2023
expect 0 'ok   python3.12, provided.al2023 (Amazon Linux 2023, glibc 2.34)' check --arch x86_64 "$c/gettid" python3.12 provided.al2023
expect 1 'needs libextra.so, which is not part of glibc or libgcc_s' check --arch x86_64 "$c/needs-extra" provided.al2023
expect 1 'ELF machine 62, not arm64' check --arch arm64 "$c/gettid" provided.al2023
expect 1 "unknown Lambda runtime 'python9.9'" check --arch x86_64 "$c/gettid" provided.al2023 python9.9
expect 0 'static, needs no library' check --arch x86_64 "$c/static" provided.al2 provided
echo "package suite passed"
