#!/usr/bin/env bash
# terraform/: formatting, `terraform test` of the provider-free modules (names, IAM policy documents), house rules
# (files, descriptions, justified skips), and a checkov scan with the project's own policies, whose detection is
# itself tested on fixtures. No provider can be downloaded here, so nothing needs one.
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/lib/python.sh
ensure_venv

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# An empty CLI configuration: no registry, no plugin cache, no warning about a missing ~/.terraformrc.
: >"$work/terraformrc"
export TF_CLI_CONFIG_FILE="$work/terraformrc" TF_IN_AUTOMATION=1 CHECKPOINT_DISABLE=1

if command -v terraform >/dev/null 2>&1; then
  echo "terraform fmt -check -recursive terraform"
  terraform fmt -check -recursive -diff terraform

  for tests_dir in terraform/internal/*/tests; do
    module=$(dirname "$tests_dir")
    echo "terraform test: $module"
    # Keep .terraform/ out of the work tree: each module gets its own data directory.
    export TF_DATA_DIR="$work/data/${module//\//_}"
    terraform -chdir="$module" init -input=false -backend=false >/dev/null
    terraform -chdir="$module" test -no-color
  done
  unset TF_DATA_DIR
else
  cat >&2 <<'WARN'
################################################################################
##  WARNING: terraform is not installed on this machine.                      ##
##  SKIPPED: terraform fmt -check and terraform test of terraform/internal/*. ##
##  The house-rule lint and the checkov scan below still run.                 ##
################################################################################
WARN
fi

echo "terraform house rules"
python tests/deploy/lint_terraform.py terraform

policies=terraform/checkov/policies
own_checks=CKV_TRACEHOSE_1,CKV_TRACEHOSE_2,CKV_TRACEHOSE_3
scan() { checkov --quiet --compact --skip-download --framework terraform --external-checks-dir "$policies" "$@"; }

echo "checkov policies detect their violations"
scan -d tests/deploy/checkov-fixtures/violations --check "$own_checks" -o json --soft-fail \
  | python tests/deploy/checkov_failures.py >"$work/violations.txt"
cat >"$work/expected.txt" <<'EXPECTED'
CKV_TRACEHOSE_1 aws_kinesis_firehose_delivery_stream.backup_disabled
CKV_TRACEHOSE_1 aws_kinesis_firehose_delivery_stream.no_backup
CKV_TRACEHOSE_2 aws_iam_policy.everything
CKV_TRACEHOSE_2 aws_iam_role_policy.from_locals
CKV_TRACEHOSE_2 aws_iam_role_policy.not_action
CKV_TRACEHOSE_2 aws_iam_role_policy.service_wildcard
CKV_TRACEHOSE_3 aws_iam_policy_document.wildcard
EXPECTED
diff -u "$work/expected.txt" "$work/violations.txt"
scan -d tests/deploy/checkov-fixtures/compliant --check "$own_checks" -o json --soft-fail \
  | python tests/deploy/checkov_failures.py >"$work/compliant.txt"
diff -u /dev/null "$work/compliant.txt"

echo "checkov scan of terraform/ (every check, the project's own included)"
scan -d terraform
echo "terraform suite passed"
