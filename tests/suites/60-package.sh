#!/usr/bin/env bash
# scripts/package.sh for x86_64: the zips build with cargo-lambda, stay within their size budgets (the script
# fails otherwise), have the layout Lambda expects, and the packaged forwarder runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/python.sh
ensure_venv

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash scripts/package.sh --arch x86_64 --out "$out"

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

# The packaged binary is the CLI outside Lambda: it must start and know its commands.
unzip -q -o "$out/tracehose-forwarder-x86_64.zip" -d "$out/forwarder"
"$out/forwarder/bootstrap" subscribe --help | grep -q -- "--destination"
echo "package suite passed"
