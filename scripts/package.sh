#!/usr/bin/env bash
# Builds the deployable packages with cargo-lambda (PyPI `cargo-lambda`, installed into the repository's .venv/
# from tests/requirements.txt when it is not on PATH):
#
#   target/package/tracehose-forwarder-<arch>.zip        the forwarder, `bootstrap` at the root
#   target/package/tracehose-extension-layer-<arch>.zip  the extension, `extensions/tracehose-extension` (a layer)
#
# for x86_64, and for arm64 when the aarch64-unknown-linux-gnu Rust target is installed or can be. Each package
# is linked (zig, through cargo-lambda) against the glibc of the oldest runtime it is for: the forwarder's
# `runtime` in terraform/forwarder, every runtime the layer's `compatible_runtimes` lists in
# terraform/extension-layer. Then scripts/check_loadable.py proves with objdump (binutils) that each of those
# runtimes can load what was zipped: glibc symbol versions, libraries, machine, interpreter. Prints each zip's
# size. Exits 1 when a runtime could not load a package (naming the runtime and the symbol) or when a zip
# exceeds its budget: 5 MB for the forwarder, 2 MB for the extension layer.
#
# Usage: scripts/package.sh [--arch x86_64|arm64|all] [--out DIR]   (default: all, target/package)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

arch_wanted=all
out="$root/target/package"
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) arch_wanted=${2:?--arch needs x86_64, arm64 or all}; shift 2 ;;
    --out) out=${2:?--out needs a directory}; shift 2 ;;
    -h | --help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "package: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$arch_wanted" in
  x86_64 | arm64 | all) ;;
  *) echo "package: --arch must be x86_64, arm64 or all, not $arch_wanted" >&2; exit 2 ;;
esac

# Checked first: finding out after a ten-minute build that the packages cannot be checked helps no one.
if ! command -v objdump >/dev/null 2>&1; then
  echo "package: objdump not found; it checks which glibc each package needs. Install binutils" \
    "(Debian/Ubuntu: apt-get install binutils)" >&2
  exit 1
fi
checker() { python3 "$root/scripts/check_loadable.py" "$@"; }
runtimes=$(checker runtimes forwarder)
mapfile -t forwarder_runtimes <<<"$runtimes"
runtimes=$(checker runtimes layer)
mapfile -t layer_runtimes <<<"$runtimes"
forwarder_glibc=$(checker glibc "${forwarder_runtimes[@]}")
layer_glibc=$(checker glibc "${layer_runtimes[@]}")

if ! command -v cargo-lambda >/dev/null 2>&1; then
  source tests/lib/python.sh
  ensure_venv
fi

readonly forwarder_budget=$((5 * 1000 * 1000))
readonly layer_budget=$((2 * 1000 * 1000))
target_dir=${CARGO_TARGET_DIR:-$root/target}
lambda_dir="$target_dir/lambda"
mkdir -p "$out"

rust_target() { [ "$1" = arm64 ] && echo aarch64-unknown-linux-gnu || echo x86_64-unknown-linux-gnu; }

# True when the Rust standard library for the architecture is available, installing it if rustup can.
have_target() {
  local triple
  triple=$(rust_target "$1")
  if rustup target list --installed 2>/dev/null | grep -qx "$triple"; then
    return 0
  fi
  echo "package: installing Rust target $triple"
  rustup target add "$triple" >/dev/null 2>&1
}

# The extension is packaged only when its crate is part of the workspace.
has_extension=false
if cargo metadata --format-version 1 --no-deps --locked 2>/dev/null |
  python3 -c 'import json,sys; sys.exit(0 if any(p["name"] == "tracehose-extension" for p in json.load(sys.stdin)["packages"]) else 1)'; then
  has_extension=true
fi

size_of() { stat -c %s "$1"; }
over_budget=0
report() { # zip budget
  local size
  size=$(size_of "$1")
  printf '%-52s %9d bytes (%s MB, budget %s MB)\n' "${1#"$root"/}" "$size" \
    "$(awk "BEGIN { printf \"%.2f\", $size / 1000000 }")" "$(awk "BEGIN { printf \"%g\", $2 / 1000000 }")"
  if [ "$size" -gt "$2" ]; then
    echo "package: ${1##*/} is over its budget" >&2
    over_budget=1
  fi
}

built=()
checks=() # "arch zip runtime..."
for arch in x86_64 arm64; do
  [ "$arch_wanted" = all ] || [ "$arch_wanted" = "$arch" ] || continue
  if ! have_target "$arch"; then
    echo "package: SKIPPING $arch: the Rust target $(rust_target "$arch") is not installed and rustup could not add it" >&2
    if [ "$arch_wanted" = "$arch" ]; then exit 1; fi
    continue
  fi
  # A glibc version after the triple makes zig link against that glibc's symbol versions (cargo-zigbuild).
  triple=$(rust_target "$arch")

  echo "package: forwarder for $arch (${forwarder_runtimes[*]}), linked against glibc $forwarder_glibc"
  cargo lambda build --profile lambda --locked --target "$triple.$forwarder_glibc" --output-format zip \
    --lambda-dir "$lambda_dir/$arch" -p tracehose-forwarder --bin tracehose
  cp "$lambda_dir/$arch/tracehose/bootstrap.zip" "$out/tracehose-forwarder-$arch.zip"
  built+=("$out/tracehose-forwarder-$arch.zip:$forwarder_budget")
  checks+=("$arch $out/tracehose-forwarder-$arch.zip ${forwarder_runtimes[*]}")

  if $has_extension; then
    echo "package: extension layer for $arch (${layer_runtimes[*]}), linked against glibc $layer_glibc"
    cargo lambda build --release --locked --target "$triple.$layer_glibc" --extension --output-format zip \
      --lambda-dir "$lambda_dir/$arch" -p tracehose-extension --bin tracehose-extension
    cp "$lambda_dir/$arch/extensions/tracehose-extension.zip" "$out/tracehose-extension-layer-$arch.zip"
    built+=("$out/tracehose-extension-layer-$arch.zip:$layer_budget")
    checks+=("$arch $out/tracehose-extension-layer-$arch.zip ${layer_runtimes[*]}")
  else
    echo "package: no tracehose-extension package in the workspace, no layer built"
  fi
done

if [ ${#built[@]} -eq 0 ]; then
  echo "package: nothing was built" >&2
  exit 1
fi

echo
unloadable=0
for entry in "${checks[@]}"; do
  read -r -a words <<<"$entry"
  checker check --arch "${words[0]}" "${words[@]:1}" || unloadable=1
done
if [ "$unloadable" -ne 0 ]; then
  echo "package: a runtime listed for a package could not load it (FAIL above)" >&2
fi

echo
for entry in "${built[@]}"; do
  report "${entry%:*}" "${entry##*:}"
done
[ "$unloadable" -eq 0 ] && [ "$over_budget" -eq 0 ]
