# Sourced by suites that need Python tools (moto, cargo-lambda, checkov). Installs them into the ignored
# .venv/ of the repository from tests/requirements.txt, with every version fixed by tests/constraints.txt, so
# a fresh machine needs nothing installed by hand and gets the versions the suites last passed with.
# Re-installs only when either file changes.
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
venv="$repo_root/.venv"
requirements="$repo_root/tests/requirements.txt"
constraints="$repo_root/tests/constraints.txt"
stamp="$venv/.requirements.sha256"

ensure_venv() {
  local want
  want=$(cat "$requirements" "$constraints" | sha256sum | cut -d' ' -f1)
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" -c "$constraints"
    echo "$want" >"$stamp"
  fi
  export PATH="$venv/bin:$PATH"
}
