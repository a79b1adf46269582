"""No IAM statement allows every action of a service, or of all services.

The modules grant least privilege; a "*" or "service:*" action (or an Allow with NotAction, which allows
everything not listed) is how a policy quietly stops being least privilege.
"""

import json
import re

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

POLICY_RESOURCES = ["aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy"]


def _first(value):
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def _wildcard(action):
    return isinstance(action, str) and (action.strip() == "*" or action.strip().endswith(":*"))


def statements_allow_wildcards(statements):
    """True when an Allow statement grants "*", "service:*" or uses NotAction."""
    for statement in _as_list(statements):
        if not isinstance(statement, dict):
            continue
        if statement.get("Effect", "Allow") != "Allow":
            continue
        if "NotAction" in statement:
            return True
        if any(_wildcard(a) for a in _as_list(statement.get("Action"))):
            return True
    return False


# Checkov renders what it can of a policy built from locals and module outputs, and leaves the rest as the text
# of an expression; in that text, a "service:*" action is a quoted token with a single colon (resource ARNs have
# several), and a bare "*" action follows an Action key.
SERVICE_WILDCARD = re.compile(r"""['"][a-z0-9-]+:\*['"]""")
BARE_WILDCARD = re.compile(r"""['"]Action['"]\s*[:=]\s*\[?\s*(['"][^'"]*['"]\s*,\s*)*['"]\*['"]""")
NOT_ACTION = re.compile(r"""['"]NotAction['"]""")


def text_allows_wildcards(text):
    return bool(SERVICE_WILDCARD.search(text) or BARE_WILDCARD.search(text) or NOT_ACTION.search(text))


def parse_policy(value):
    """The policy as a dict, or None when Checkov could not resolve it (a reference it does not follow)."""
    value = _first(value)
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


class IamNoWildcardActions(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="Ensure no IAM policy statement allows '*' or 'service:*' actions",
            id="CKV_TRACEHOSE_2",
            categories=[CheckCategories.IAM],
            supported_resources=POLICY_RESOURCES + ["aws_iam_role"],
        )

    def scan_resource_conf(self, conf):
        policies = []
        if "policy" in conf:
            policies.append(conf.get("policy"))
        for inline in _as_list(conf.get("inline_policy")):
            if isinstance(inline, dict) and "policy" in inline:
                policies.append(inline.get("policy"))
        if not policies:
            return CheckResult.PASSED
        for raw in policies:
            policy = parse_policy(raw)
            if policy is None:
                # An unresolved reference: judge the text Checkov could render.
                if text_allows_wildcards(str(raw)):
                    return CheckResult.FAILED
                continue
            statements = policy.get("Statement")
            if isinstance(statements, str):
                if text_allows_wildcards(statements):
                    return CheckResult.FAILED
            elif statements_allow_wildcards(statements):
                return CheckResult.FAILED
        return CheckResult.PASSED


check = IamNoWildcardActions()
