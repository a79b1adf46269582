"""The same rule as CKV_TRACEHOSE_2 for policies written as aws_iam_policy_document data sources."""

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.data.base_check import BaseDataCheck


def _as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


class IamDocumentNoWildcardActions(BaseDataCheck):
    def __init__(self):
        super().__init__(
            name="Ensure no IAM policy document statement allows '*' or 'service:*' actions",
            id="CKV_TRACEHOSE_3",
            categories=[CheckCategories.IAM],
            supported_data=["aws_iam_policy_document"],
        )

    def scan_data_conf(self, conf):
        for statement in _as_list(conf.get("statement")):
            if not isinstance(statement, dict):
                continue
            effect = statement.get("effect", ["Allow"])
            if _as_list(effect)[:1] == ["Deny"]:
                continue
            if statement.get("not_actions"):
                return CheckResult.FAILED
            actions = []
            for value in _as_list(statement.get("actions")):
                actions.extend(_as_list(value))
            if any(isinstance(a, str) and (a.strip() == "*" or a.strip().endswith(":*")) for a in actions):
                return CheckResult.FAILED
        return CheckResult.PASSED


check = IamDocumentNoWildcardActions()
