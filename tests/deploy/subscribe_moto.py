"""End-to-end test of `tracehose subscribe` against CloudWatch Logs served by a moto server.

Starts moto on 127.0.0.1 with a free port, builds fixtures with boto3 (log groups, destination functions, a
Firehose stream), runs the real binary, and checks both what it reports and what CloudWatch Logs then holds.
Ends with the plain 'N passed, N failed' line; exits non-zero when any case failed.
"""

import json
import os
import subprocess
import sys
import tempfile

from harness import REGION, Cases, aws_environ, clients, moto_server

ACCOUNT = "123456789012"  # moto's default account
BINARY = sys.argv[1] if len(sys.argv) > 1 else "target/debug/tracehose"


def unique_keys(pairs):
    """json.loads hook: a key twice in one object is an error, not the last value silently."""
    keys = [k for k, _ in pairs]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    assert not dupes, f"duplicate JSON keys {dupes} in {pairs}"
    return dict(pairs)


class Env:
    def __init__(self, endpoint):
        self.endpoint = endpoint
        self.environ = aws_environ(endpoint)
        self.logs, self.iam, self.awslambda, self.s3, self.firehose = clients(
            endpoint, "logs", "iam", "lambda", "s3", "firehose"
        )

    def run(self, *args, extra_env=None):
        env = dict(self.environ)
        env.update(extra_env or {})
        proc = subprocess.run(
            [BINARY, "subscribe", *args], env=env, capture_output=True, text=True, timeout=120
        )
        return proc

    def run_json(self, *args, expect_code=0):
        proc = self.run(*args, "--json")
        assert proc.returncode == expect_code, (
            f"exit {proc.returncode}, wanted {expect_code}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
        report = json.loads(proc.stdout, object_pairs_hook=unique_keys)
        return {g["log_group"]: g for g in report["log_groups"]}

    def filters(self, group):
        return self.logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]


def make_fixtures(env):
    role = env.iam.create_role(
        RoleName="fixture-lambda",
        AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        ),
    )["Role"]["Arn"]
    functions = {}
    for name in ("tracehose", "other-tool"):
        functions[name] = env.awslambda.create_function(
            FunctionName=name,
            Runtime="provided.al2023",
            Role=role,
            Handler="bootstrap",
            Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18},
        )["FunctionArn"]
    env.s3.create_bucket(Bucket="fixture-backup")
    cwl_role = env.iam.create_role(
        RoleName="logs-to-firehose",
        AssumeRolePolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "logs.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        ),
    )["Role"]["Arn"]
    stream = env.firehose.create_delivery_stream(
        DeliveryStreamName="tracehose-logs",
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": cwl_role, "BucketARN": "arn:aws:s3:::fixture-backup"},
    )["DeliveryStreamARN"]
    for group in (
        "/aws/lambda/app-a",
        "/aws/lambda/app-b",
        "/aws/lambda/tracehose",
        "/ecs/other",
        "/svc/full",
        "/svc/dup",
        "/custom/forwarder",
        "/custom/app",
    ):
        env.logs.create_log_group(logGroupName=group)
    return functions, stream, cwl_role


CASES = []


def case(fn):
    CASES.append(fn)
    return fn


@case
def prefix_subscribes_matching_groups_but_never_the_forwarders_own(env, fx):
    fn = fx["functions"]["tracehose"]
    got = env.run_json("--prefix", "/aws/lambda/", "--destination", fn)
    assert set(got) == {"/aws/lambda/app-a", "/aws/lambda/app-b", "/aws/lambda/tracehose"}, got
    assert got["/aws/lambda/app-a"]["action"] == "created", got
    assert got["/aws/lambda/app-b"]["action"] == "created", got
    assert got["/aws/lambda/tracehose"]["action"] == "skipped_own_log_group", got
    for group in ("/aws/lambda/app-a", "/aws/lambda/app-b"):
        filters = env.filters(group)
        assert [(f["filterName"], f["destinationArn"]) for f in filters] == [("tracehose", fn)], filters
    assert env.filters("/aws/lambda/tracehose") == []
    assert env.filters("/ecs/other") == []


@case
def second_run_changes_nothing(env, fx):
    fn = fx["functions"]["tracehose"]
    got = env.run_json("--prefix", "/aws/lambda/", "--destination", fn)
    assert got["/aws/lambda/app-a"]["action"] == "unchanged", got
    assert got["/aws/lambda/app-b"]["action"] == "unchanged", got
    assert len(env.filters("/aws/lambda/app-a")) == 1


@case
def changed_pattern_updates_our_filter_in_place(env, fx):
    fn = fx["functions"]["tracehose"]
    got = env.run_json("--log-group", "/aws/lambda/app-a", "--destination", fn, "--filter-pattern", "ERROR")
    assert got["/aws/lambda/app-a"]["action"] == "updated", got
    assert got["/aws/lambda/app-a"]["changed"] == ["filter pattern"], got
    filters = env.filters("/aws/lambda/app-a")
    assert len(filters) == 1 and filters[0]["filterPattern"] == "ERROR", filters


@case
def dry_run_reports_and_changes_nothing(env, fx):
    fn = fx["functions"]["tracehose"]
    env.logs.create_log_group(logGroupName="/aws/lambda/app-c")
    got = env.run_json("--prefix", "/aws/lambda/", "--destination", fn, "--dry-run")
    assert got["/aws/lambda/app-c"]["action"] == "created" and got["/aws/lambda/app-c"]["dry_run"], got
    # app-a carries the pattern of the previous case: the dry run would reset it, and must not.
    assert got["/aws/lambda/app-a"]["action"] == "updated" and got["/aws/lambda/app-a"]["dry_run"], got
    assert env.filters("/aws/lambda/app-a")[0]["filterPattern"] == "ERROR"
    assert env.filters("/aws/lambda/app-c") == []
    text = env.run("--log-group", "/aws/lambda/app-c", "--destination", fn, "--dry-run")
    assert text.returncode == 0, text.stderr
    assert '/aws/lambda/app-c: filter "tracehose" would be created' in text.stdout, text.stdout
    assert "subscribe (dry run): 1 log groups: 1 created" in text.stdout, text.stdout
    assert env.filters("/aws/lambda/app-c") == []


@case
def full_group_is_reported_clearly_and_left_alone(env, fx):
    other = fx["functions"]["other-tool"]
    for name in ("vendor-a", "vendor-b"):
        env.logs.put_subscription_filter(
            logGroupName="/svc/full", filterName=name, filterPattern="", destinationArn=other
        )
    proc = env.run("--log-group", "/svc/full", "--destination", fx["functions"]["tracehose"])
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "already has 2 subscription filters (vendor-a, vendor-b)" in proc.stdout, proc.stdout
    assert "1 at the filter limit" in proc.stdout, proc.stdout
    assert sorted(f["filterName"] for f in env.filters("/svc/full")) == ["vendor-a", "vendor-b"]


@case
def existing_filter_to_our_destination_is_not_duplicated(env, fx):
    fn = fx["functions"]["tracehose"]
    env.logs.put_subscription_filter(logGroupName="/svc/dup", filterName="legacy", filterPattern="", destinationArn=fn)
    got = env.run_json("--log-group", "/svc/dup", "--destination", fn)
    assert got["/svc/dup"]["action"] == "subscribed_by_other_filter", got
    assert (got["/svc/dup"]["filter_name"], got["/svc/dup"]["other_filter"]) == ("tracehose", "legacy"), got
    assert [f["filterName"] for f in env.filters("/svc/dup")] == ["legacy"], env.filters("/svc/dup")


@case
def firehose_destination_with_role_and_own_group_from_the_environment(env, fx):
    args = ["--prefix", "/custom/", "--destination", fx["stream"], "--role-arn", fx["cwl_role"]]
    proc = env.run(*args, "--json", extra_env={"TRACEHOSE_OWN_LOG_GROUP": "/custom/forwarder"})
    assert proc.returncode == 0, proc.stderr
    got = {g["log_group"]: g for g in json.loads(proc.stdout, object_pairs_hook=unique_keys)["log_groups"]}
    assert got["/custom/forwarder"]["action"] == "skipped_own_log_group", got
    assert got["/custom/app"]["action"] == "created", got
    filters = env.filters("/custom/app")
    assert filters[0]["destinationArn"] == fx["stream"] and filters[0]["roleArn"] == fx["cwl_role"], filters
    assert env.filters("/custom/forwarder") == []


@case
def firehose_destination_without_role_is_a_configuration_error(env, fx):
    proc = env.run("--log-group", "/custom/app", "--destination", fx["stream"])
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "--role-arn (TRACEHOSE_SUBSCRIBE_ROLE_ARN)" in proc.stderr, proc.stderr


@case
def missing_log_group_fails_and_names_it(env, fx):
    got = env.run_json("--log-group", "/does/not/exist", "--destination", fx["functions"]["tracehose"], expect_code=1)
    assert got["/does/not/exist"]["action"] == "failed", got
    assert "does not exist" in got["/does/not/exist"]["error"], got


@case
def create_log_group_event_subscribes_covered_groups_only(env, fx):
    fn = fx["functions"]["tracehose"]
    env.logs.create_log_group(logGroupName="/aws/lambda/brand-new")
    env.logs.create_log_group(logGroupName="/elsewhere/new")

    def event(group):
        f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
        json.dump(
            {
                "version": "0",
                "detail-type": "AWS API Call via CloudTrail",
                "source": "aws.logs",
                "account": ACCOUNT,
                "region": REGION,
                "detail": {
                    "eventSource": "logs.amazonaws.com",
                    "eventName": "CreateLogGroup",
                    "requestParameters": {"logGroupName": group},
                },
            },
            f,
        )
        f.close()
        return f.name

    got = env.run_json("--prefix", "/aws/lambda/", "--destination", fn, "--event", event("/aws/lambda/brand-new"))
    assert got["/aws/lambda/brand-new"]["action"] == "created", got
    assert [f["filterName"] for f in env.filters("/aws/lambda/brand-new")] == ["tracehose"]
    got = env.run_json("--prefix", "/aws/lambda/", "--destination", fn, "--event", event("/elsewhere/new"))
    assert got["/elsewhere/new"]["action"] == "not_matched", got
    assert env.filters("/elsewhere/new") == []
    got = env.run_json("--prefix", "/aws/lambda/", "--destination", fn, "--event", event("/aws/lambda/tracehose"))
    assert got["/aws/lambda/tracehose"]["action"] == "skipped_own_log_group", got
    assert env.filters("/aws/lambda/tracehose") == []


@case
def bad_arguments_name_the_flag(env, fx):
    proc = env.run("--log-group", "/x", "--destination", "not-an-arn")
    assert proc.returncode == 2 and "--destination" in proc.stderr, (proc.returncode, proc.stderr)
    proc = env.run("--log-group", "/x", "--prefix", "/y", "--destination", fx["functions"]["tracehose"])
    assert proc.returncode != 0 and "cannot be used with" in proc.stderr, (proc.returncode, proc.stderr)


def main():
    if not os.access(BINARY, os.X_OK):
        print(f"subscribe e2e: binary {BINARY} not found", file=sys.stderr)
        return 2
    cases = Cases()
    with moto_server() as endpoint:
        env = Env(endpoint)
        functions, stream, cwl_role = make_fixtures(env)
        fx = {"functions": functions, "stream": stream, "cwl_role": cwl_role}
        for fn in CASES:
            cases.run(fn.__name__, fn, env, fx)
    return cases.done("subscribe")


if __name__ == "__main__":
    sys.exit(main())
