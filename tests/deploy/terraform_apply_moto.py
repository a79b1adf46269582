"""Every stack in terraform/examples applied and destroyed against a moto server, the way its README says.

For each example, in a temporary directory (nothing lands in the work tree): a copy of terraform/ with the
packages at the paths the example reads by default; `terraform init` from the provider filesystem mirror only;
a plan whose outputs that name resources must be known before anything exists; the `terraform apply` command of
the example's README, run as written plus -auto-approve, in one go on an account that holds only the log groups
the README assumes; checks through boto3 that moto holds what the example promises and that the outputs name it,
and in the state that what a resource names by a plan-time ARN was created before it; a second plan that changes
nothing but what moto is known not to return (MOTO_DRIFT); `terraform destroy`; and a check that moto then holds
exactly what it held before the apply.

Usage: terraform_apply_moto.py MIRROR_DIR [EXAMPLE...]
The packages an example reads are reused when they exist; otherwise the build commands of its README make them.
Ends with 'terraform apply: N passed, N failed'; exits non-zero when any case failed.
"""

import json
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import urllib.request

from harness import FAKE_KEYS, Cases, aws_environ, moto_server

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "terraform" / "examples"
REGION = "eu-west-1"  # the examples' default region
# The packages the examples read by default, relative to the repository, where their READMEs build them.
FORWARDER = "target/package/tracehose-forwarder-x86_64.zip"
LAYER = "target/package/tracehose-extension-layer-x86_64.zip"
SAMPLE_FUNCTION = "target/sample-function/lambda/bootstrap/bootstrap.zip"
# The one difference moto leaves between a stack and its configuration: it does not return a function's
# logging_config, so the provider plans to set it again on every plan after the first apply.
MOTO_DRIFT = {("aws_lambda_function", "logging_config")}


class Aws:
    """boto3 clients for moto, in the examples' region."""

    def __init__(self, endpoint):
        import boto3

        self.endpoint = endpoint
        for service in ("lambda", "iam", "logs", "s3", "firehose", "sqs", "events"):
            client = boto3.client(service, endpoint_url=endpoint, region_name=REGION, **FAKE_KEYS)
            setattr(self, "awslambda" if service == "lambda" else service, client)

    def reset(self):
        request = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=30).close()

    def pages(self, client, operation, key, **kwargs):
        return [item for page in client.get_paginator(operation).paginate(**kwargs) for item in page[key]]

    def filters(self, group):
        return self.logs.describe_subscription_filters(logGroupName=group)["subscriptionFilters"]

    def inventory(self):
        """Everything an example can create, by kind: what must be gone again after `terraform destroy`."""
        groups = sorted(g["logGroupName"] for g in self.pages(self.logs, "describe_log_groups", "logGroups"))
        layers = self.pages(self.awslambda, "list_layers", "Layers")
        return {
            "functions": sorted(f["FunctionName"] for f in self.pages(self.awslambda, "list_functions", "Functions")),
            "layer versions": sorted(
                v["LayerVersionArn"]
                for layer in layers
                for v in self.awslambda.list_layer_versions(LayerName=layer["LayerName"])["LayerVersions"]
            ),
            "roles": sorted(r["RoleName"] for r in self.pages(self.iam, "list_roles", "Roles")),
            "log groups": groups,
            "subscription filters": sorted(
                f"{g} {f['filterName']} -> {f['destinationArn']}" for g in groups for f in self.filters(g)
            ),
            "buckets": sorted(b["Name"] for b in self.s3.list_buckets()["Buckets"]),
            "delivery streams": sorted(self.firehose.list_delivery_streams(Limit=100)["DeliveryStreamNames"]),
            "queues": sorted(self.sqs.list_queues().get("QueueUrls", [])),
            "rules": sorted(r["Name"] for r in self.events.list_rules()["Rules"]),
        }


def readme_commands(example):
    """The shell commands of the example's README, backslash continuations joined."""
    text = (EXAMPLES / example / "README.md").read_text()
    blocks = re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)
    return [line for block in blocks for line in re.sub(r"\\\n\s*", " ", block).splitlines() if line.strip()]


def readme_apply_command(example):
    """The `terraform apply` command of the example's README, as argv."""
    commands = [shlex.split(command, comments=True) for command in readme_commands(example)]
    applies = [argv for argv in commands if argv[:2] == ["terraform", "apply"]]
    assert len(applies) == 1, f"{example}/README.md: wanted one `terraform apply` command, found {applies}"
    return applies[0]


def build_packages(example, needed):
    """Runs the README's commands before its `cd terraform/examples/...` (the builds), from the repository's
    root, when a package the example needs is missing; then every one must be there."""
    missing = [p for p in needed if not (ROOT / p).is_file()]
    if missing:
        print(f"{example}: {missing} missing, running the README's build commands", flush=True)
        for command in readme_commands(example):
            if command.startswith("cd terraform/examples/"):
                break
            print(f"+ {command}", flush=True)
            subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=ROOT, check=True)
    missing = [p for p in needed if not (ROOT / p).is_file()]
    assert not missing, f"the README's build commands did not make {missing}"


class Stack:
    """One example in its own copy of terraform/, with its own data directory and state."""

    def __init__(self, example, packages, work, environ):
        self.example = example
        self.copy = work / example / "repo"
        # Without what a `terraform init` or apply in the work tree may have left there.
        ignore = shutil.ignore_patterns(".terraform*", "*.tfstate*")
        shutil.copytree(ROOT / "terraform", self.copy / "terraform", ignore=ignore)
        for package in packages:
            (self.copy / package).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / package, self.copy / package)
        self.dir = self.copy / "terraform" / "examples" / example
        self.logs = work / example / "logs"
        self.logs.mkdir(parents=True)
        self.environ = dict(environ, TF_DATA_DIR=str(work / example / "data"))
        self.readme_apply = readme_apply_command(example)
        self.variables = self.readme_apply[2:]
        self.step = 0

    def terraform(self, *args, capture=False):
        """Runs terraform in the example's directory; output to a log file, printed when it fails."""
        self.step += 1
        log = self.logs / f"{self.step:02d}-{args[0]}.log"
        with open(log, "w") as out:
            proc = subprocess.run(
                ["terraform", *args],
                cwd=self.dir,
                env=self.environ,
                stdout=subprocess.PIPE if capture else out,
                stderr=out,
                text=True,
            )
        if proc.returncode != 0:
            text = log.read_text()
            # Terraform's errors come last, after the plan: from the first one on, or the end of the log.
            start = text.find("\nError: ")
            sys.stdout.write(text[start:][:6000] if start >= 0 else text[-3000:])
            raise AssertionError(f"terraform {' '.join(args)} exited {proc.returncode} (log {log})")
        return proc.stdout

    def plan_json(self, name):
        self.terraform("plan", "-input=false", "-no-color", f"-out={name}", *self.variables)
        return json.loads(self.terraform("show", "-json", name, capture=True))

    def outputs(self):
        return {k: v["value"] for k, v in json.loads(self.terraform("output", "-json", capture=True)).items()}

    def dependencies(self):
        """Resource address -> the resources Terraform recorded it waited for, from the state."""
        found = {}
        for resource in json.loads(self.terraform("state", "pull", capture=True))["resources"]:
            if resource["mode"] != "managed":
                continue
            address = ".".join(filter(None, [resource.get("module"), resource["type"], resource["name"]]))
            for instance in resource["instances"]:
                found.setdefault(address, set()).update(instance.get("dependencies", []))
        return found


def unknown_outputs(plan, names):
    changes = plan.get("output_changes", {})
    missing = [n for n in names if n not in changes]
    assert not missing, f"outputs not in the plan: {missing}"
    return [n for n in names if changes[n]["after_unknown"] is not False]


def unexpected_changes(plan):
    """Resource changes of a plan after the apply, but for moto's known drift."""
    found = []
    for rc in plan.get("resource_changes", []):
        actions = rc["change"]["actions"]
        if actions in (["no-op"], ["read"]):
            continue
        if actions == ["update"]:
            before, after = rc["change"]["before"] or {}, rc["change"]["after"] or {}
            unknown = rc["change"].get("after_unknown") or {}
            keys = {k for k in set(before) | set(after) if before.get(k) != after.get(k) or unknown.get(k)}
            if keys and all((rc["type"], k) in MOTO_DRIFT for k in keys):
                continue
            found.append(f"{rc['address']}: update of {sorted(keys)}")
        else:
            found.append(f"{rc['address']}: {'/'.join(actions)}")
    return found


def function(aws, name):
    return aws.awslambda.get_function(FunctionName=name)["Configuration"]


def only_filter(aws, group):
    filters = aws.filters(group)
    assert len(filters) == 1, f"{group}: wanted one subscription filter, found {filters}"
    assert filters[0]["filterName"] == "tracehose", filters[0]
    return filters[0]


def check_direct_subscription(aws, out):
    arn = function(aws, "tracehose")["FunctionArn"]
    assert out["function_arn"] == arn, (out["function_arn"], arn)
    config = function(aws, "tracehose")
    env = config["Environment"]["Variables"]
    assert env["DT_CONNECTION_BASE_URL"] == "https://abc12345.live.dynatrace.com", env
    assert env["DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN"].startswith("arn:aws:secretsmanager:"), env
    assert env["TRACEHOSE_SUBSCRIBE_PREFIXES"] == "/aws/lambda/", env
    assert env["TRACEHOSE_SUBSCRIBE_DESTINATION_ARN"] == arn, env
    # The log group that existed under the prefix is subscribed; the forwarder's own never.
    assert only_filter(aws, "/aws/lambda/existing-app")["destinationArn"] == arn
    assert aws.filters("/aws/lambda/tracehose") == [], aws.filters("/aws/lambda/tracehose")
    assert out["subscribed_log_group_names"] == ["/aws/lambda/existing-app"], out["subscribed_log_group_names"]
    queue = aws.sqs.get_queue_url(QueueName="tracehose-failures")["QueueUrl"]
    queue_arn = aws.sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    assert out["failure_destination_arn"] == queue_arn, (out["failure_destination_arn"], queue_arn)
    invoke = aws.awslambda.get_function_event_invoke_config(FunctionName="tracehose")
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"] == queue_arn, invoke
    policy = json.loads(aws.awslambda.get_policy(FunctionName="tracehose")["Policy"])
    principals = sorted(s["Principal"]["Service"] for s in policy["Statement"])
    assert principals == ["events.amazonaws.com", "logs.amazonaws.com"], principals
    targets = aws.events.list_targets_by_rule(Rule="tracehose-new-log-groups")["Targets"]
    assert [t["Arn"] for t in targets] == [arn], targets


def check_firehose_forwarder_endpoint(aws, out):
    stream = aws.firehose.describe_delivery_stream(DeliveryStreamName="tracehose-logs")["DeliveryStreamDescription"]
    assert out["delivery_stream_arn"] == stream["DeliveryStreamARN"], (out["delivery_stream_arn"], stream)
    (destination,) = stream["Destinations"]
    http = destination["HttpEndpointDestinationDescription"]
    url = aws.awslambda.get_function_url_config(FunctionName="tracehose-http")["FunctionUrl"]
    urls = {http["EndpointConfiguration"]["Url"].rstrip("/"), url.rstrip("/"), out["function_url"].rstrip("/")}
    assert len(urls) == 1, f"the stream's endpoint, the function's URL and the output differ: {urls}"
    assert http["S3BackupMode"] == "FailedDataOnly", http
    bucket = out["backup_bucket_name"]
    assert http["S3DestinationDescription"]["BucketARN"] == f"arn:aws:s3:::{bucket}", http
    assert aws.s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = aws.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]
    assert [r["ID"] for r in rules] == ["expire-failed-deliveries"], rules
    role = aws.iam.get_role(RoleName="tracehose-logs-to-firehose")["Role"]["Arn"]
    assert out["subscription_role_arn"] == role, (out["subscription_role_arn"], role)
    subscription = only_filter(aws, "/aws/lambda/my-app")
    assert subscription["destinationArn"] == stream["DeliveryStreamARN"], subscription
    assert subscription["roleArn"] == role, subscription
    env = function(aws, "tracehose-http")["Environment"]["Variables"]
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "https://otlp.example.com", env
    assert env["TRACEHOSE_ACCESS_KEYS_SECRET_ARN"] == http["SecretsManagerConfiguration"]["SecretARN"], (env, http)
    for group in ("/aws/lambda/tracehose-http", "/aws/kinesisfirehose/tracehose-logs"):
        assert aws.filters(group) == [], (group, aws.filters(group))


def check_function_with_extension(aws, out):
    versions = aws.awslambda.list_layer_versions(LayerName="tracehose-extension")["LayerVersions"]
    assert [v["LayerVersionArn"] for v in versions] == [out["layer_version_arn"]], (versions, out)
    sample = function(aws, out["function_name"])
    assert out["function_name"] == "tracehose-sample"
    assert [layer["Arn"] for layer in sample["Layers"]] == [out["layer_version_arn"]], sample["Layers"]
    assert sample["Runtime"] == "provided.al2023" and sample["Handler"] == "bootstrap", sample
    assert sample["Environment"]["Variables"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "https://otlp.example.com"
    forwarder = function(aws, "tracehose")["FunctionArn"]
    assert only_filter(aws, "/aws/lambda/tracehose-sample")["destinationArn"] == forwarder
    assert aws.filters("/aws/lambda/tracehose") == [], aws.filters("/aws/lambda/tracehose")


# What a resource names by a plan-time ARN must exist first, yet moto accepts a subscription filter to a function
# or stream that is not there: the order is checked in the state instead. Resource -> what it must wait for.
FUNCTION_DESTINATION = {
    "module.subscriptions.aws_cloudwatch_log_subscription_filter.this": {
        "module.forwarder.aws_lambda_function.this",
        "module.forwarder.aws_lambda_permission.cloudwatch_logs",
    },
    "module.forwarder.aws_lambda_function_event_invoke_config.this": {"module.forwarder.aws_sqs_queue.failures"},
}
STREAM_DESTINATION = {
    "module.subscriptions.aws_cloudwatch_log_subscription_filter.this": {
        "module.firehose.aws_kinesis_firehose_delivery_stream.this",
        "module.subscriptions.aws_iam_role_policy.logs",
    },
    "module.forwarder.aws_lambda_function_event_invoke_config.this": {"module.forwarder.aws_sqs_queue.failures"},
}

# example: (packages it reads, log groups there before the apply, outputs known at plan time, order of creation,
# checks after the apply)
CASES = {
    "direct-subscription": (
        [FORWARDER],
        # A log group under the subscribed prefix, as an account has: it must get a filter, the forwarder's not.
        ["/aws/lambda/existing-app"],
        ["function_arn", "failure_destination_arn"],
        FUNCTION_DESTINATION,
        check_direct_subscription,
    ),
    "firehose-forwarder-endpoint": (
        [FORWARDER],
        # The README's log_group_names, which it says must exist.
        ["/aws/lambda/my-app"],
        ["delivery_stream_arn", "backup_bucket_name", "subscription_role_arn"],
        STREAM_DESTINATION,
        check_firehose_forwarder_endpoint,
    ),
    "function-with-extension": (
        [FORWARDER, LAYER, SAMPLE_FUNCTION],
        [],
        ["function_name"],
        FUNCTION_DESTINATION,
        check_function_with_extension,
    ),
}


def run_example(aws, work, environ, cases, example):
    packages, groups, known_outputs, order, check = CASES[example]
    prefix = f"{example}:"
    failed = cases.failed
    cases.run(f"{prefix} its packages, reused or built by the README's commands", build_packages, example, packages)
    if cases.failed > failed:
        return
    aws.reset()
    for group in groups:
        aws.logs.create_log_group(logGroupName=group)
    before = aws.inventory()
    stack = Stack(example, packages, work, environ)
    state = {}

    def init():
        stack.terraform("init", "-input=false", "-no-color")

    def plan_known():
        unknown = unknown_outputs(stack.plan_json("first.plan"), known_outputs)
        assert not unknown, f"outputs unknown at plan time: {unknown}"

    def apply():
        stack.terraform(*stack.readme_apply[1:], "-auto-approve", "-input=false", "-no-color")
        state["applied"] = True

    def created():
        check(aws, stack.outputs())

    def ordered():
        dependencies = stack.dependencies()
        for resource, needs in order.items():
            assert resource in dependencies, f"{resource} is not in the state"
            missing = needs - dependencies[resource]
            assert not missing, f"{resource} did not wait for {sorted(missing)}"

    def converged():
        changes = unexpected_changes(stack.plan_json("again.plan"))
        assert not changes, "a plan after the apply still changes:\n  " + "\n  ".join(changes)

    def destroy():
        stack.terraform("destroy", "-auto-approve", "-input=false", "-no-color", *stack.variables)

    def nothing_left():
        after = aws.inventory()
        left = {kind: sorted(set(after[kind]) - set(before[kind])) for kind in after}
        gone = {kind: sorted(set(before[kind]) - set(after[kind])) for kind in after}
        assert not any(left.values()), f"left behind: { {k: v for k, v in left.items() if v} }"
        assert not any(gone.values()), f"removed what it did not create: { {k: v for k, v in gone.items() if v} }"

    cases.run(f"{prefix} terraform init from the provider mirror alone", init)
    cases.run(f"{prefix} the outputs that name resources are known at plan time", plan_known)
    cases.run(f"{prefix} the README's terraform apply, in one go", apply)
    if state.get("applied"):
        cases.run(f"{prefix} moto holds what the example promises, as its outputs say", created)
        cases.run(f"{prefix} what is named by a plan-time ARN was created first", ordered)
        cases.run(f"{prefix} a second plan changes nothing (but moto's known drift)", converged)
    cases.run(f"{prefix} terraform destroy", destroy)
    cases.run(f"{prefix} nothing of it is left", nothing_left)


def main():
    mirror = pathlib.Path(sys.argv[1]).resolve()
    examples = sys.argv[2:] or sorted(p.name for p in EXAMPLES.iterdir() if (p / "versions.tf").is_file())
    unknown = [e for e in examples if e not in CASES]
    if unknown:
        sys.exit(f"terraform apply: no checks for examples {unknown}: add them to CASES")
    cases = Cases()
    with tempfile.TemporaryDirectory(prefix="tf-apply-") as tmp, moto_server() as endpoint:
        work = pathlib.Path(tmp)
        rc = work / "terraformrc"
        # Only the mirror: `terraform init` never reaches for a registry.
        rc.write_text("provider_installation {\n  filesystem_mirror {\n    path = %s\n  }\n}\n" % json.dumps(str(mirror)))
        environ = {k: v for k, v in aws_environ(endpoint).items() if not k.startswith("TF_")}
        environ.update(TF_CLI_CONFIG_FILE=str(rc), TF_IN_AUTOMATION="1", CHECKPOINT_DISABLE="1")
        aws = Aws(endpoint)
        for example in examples:
            run_example(aws, work, environ, cases, example)
    return cases.done("terraform apply")


if __name__ == "__main__":
    sys.exit(main())
