#!/usr/bin/env bash
# Every terraform/examples stack, applied and destroyed against a moto server the way its README says: one
# `terraform apply` on an account without any of it, checks of what moto then holds, a second plan that changes
# nothing, `terraform destroy`, and nothing left. `terraform init` installs hashicorp/aws from a provider
# filesystem mirror only (TRACEHOSE_TF_PROVIDER_MIRROR, else the usual plugin directories, else a search of
# this machine); without terraform or a mirror the suite is skipped with a loud banner. After 60-package.sh,
# so that scripts/package.sh finds its build done; the packages in target/ are reused when they exist.
set -euo pipefail
cd "$(dirname "$0")/../.."

skip() {
  cat >&2 <<WARN
################################################################################
##  WARNING: $1
##  SKIPPED: applying and destroying terraform/examples/* against moto.
##  The other Terraform checks (tests/suites/50-terraform.sh) still run.
################################################################################
WARN
  exit 0
}

# A directory holding registry.terraform.io/hashicorp/aws/..., the layout of a filesystem mirror.
has_aws() { [ -d "$1/registry.terraform.io/hashicorp/aws" ]; }
find_mirror() {
  local dir found
  if [ -n "${TRACEHOSE_TF_PROVIDER_MIRROR:-}" ]; then
    if has_aws "$TRACEHOSE_TF_PROVIDER_MIRROR"; then
      echo "$TRACEHOSE_TF_PROVIDER_MIRROR"
      return
    fi
    echo "TRACEHOSE_TF_PROVIDER_MIRROR=$TRACEHOSE_TF_PROVIDER_MIRROR has no registry.terraform.io/hashicorp/aws" >&2
    exit 1
  fi
  # Terraform's own implied mirror directories on Linux, and where this machine kind keeps one.
  for dir in "$HOME/.terraform.d/plugins" "${XDG_DATA_HOME:-$HOME/.local/share}/terraform/plugins" \
    /usr/local/share/terraform/plugins /usr/share/terraform/plugins /opt/tf-plugins; do
    if has_aws "$dir"; then
      echo "$dir"
      return
    fi
  done
  found=$(find / \( -path /proc -o -path /sys -o -path /dev \) -prune -o -name 'terraform-provider-aws_*' \
    -path '*/registry.terraform.io/hashicorp/aws/*' -print -quit 2>/dev/null || true)
  [ -z "$found" ] || echo "${found%%/registry.terraform.io/hashicorp/aws/*}"
}

command -v terraform >/dev/null 2>&1 || skip "terraform is not installed on this machine."
mirror=$(find_mirror)
[ -n "$mirror" ] || skip "no filesystem mirror of the hashicorp/aws provider on this machine."
echo "provider mirror: $mirror"

source tests/lib/python.sh
ensure_venv
python tests/deploy/terraform_apply_moto.py "$mirror"
