data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  # `name` works across provider 5.x and 6.x (6.x adds `region`, deprecating `name`).
  region    = data.aws_region.current.name
  partition = data.aws_partition.current.partition

  # ARNs built from partition, region, account and name are known at plan time, before the resources exist:
  # the function's own environment can name it without a cycle, and callers can feed the outputs to
  # count/for_each (log-subscriptions decides by the destination ARN whether it needs a role). The outputs that
  # carry them depend on the resources, so whatever uses them still waits for the resources to exist.
  function_arn           = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${module.names.function_name}"
  role_arn               = "arn:${local.partition}:iam::${local.account_id}:role/${module.names.function_role_name}"
  failure_queue_arn      = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${module.names.failure_queue_name}"
  new_log_group_rule_arn = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${module.names.new_log_group_rule_name}"

  create_failure_queue    = var.failure_destination_arn == null
  failure_destination_arn = local.create_failure_queue ? local.failure_queue_arn : var.failure_destination_arn

  auto_subscribe            = length(var.subscribe_prefixes) > 0
  subscribe_destination_arn = coalesce(var.subscribe_destination_arn, local.function_arn)
  subscribe_environment = local.auto_subscribe ? merge(
    {
      TRACEHOSE_SUBSCRIBE_PREFIXES        = join(",", var.subscribe_prefixes)
      TRACEHOSE_SUBSCRIBE_DESTINATION_ARN = local.subscribe_destination_arn
      TRACEHOSE_SUBSCRIBE_FILTER_PATTERN  = var.subscribe_filter_pattern
      TRACEHOSE_SUBSCRIBE_FILTER_NAME     = module.names.subscription_filter_name
    },
    var.subscribe_role_arn == null ? {} : { TRACEHOSE_SUBSCRIBE_ROLE_ARN = var.subscribe_role_arn },
  ) : {}
}

module "names" {
  source     = "../internal/naming"
  name       = var.name
  account_id = local.account_id
  region     = local.region
}

module "iam" {
  source                          = "../internal/forwarder-iam"
  partition                       = local.partition
  region                          = local.region
  account_id                      = local.account_id
  log_group_name                  = module.names.function_log_group_name
  secret_arns                     = values(var.secret_arns)
  secret_kms_key_arns             = var.secret_kms_key_arns
  failure_destination_arn         = local.failure_destination_arn
  failure_destination_kms_key_arn = local.create_failure_queue ? var.kms_key_arn : null
  subscribe_prefixes              = var.subscribe_prefixes
  subscribe_role_arn              = var.subscribe_role_arn
  tracing                         = var.tracing
}

module "events" {
  count              = local.auto_subscribe ? 1 : 0
  source             = "../internal/events"
  subscribe_prefixes = var.subscribe_prefixes
}

resource "aws_cloudwatch_log_group" "function" {
  # checkov:skip=CKV_AWS_338:The forwarder's own diagnostics, not the forwarded data (that lives in the backends); retention is the log_retention_days variable, 30 days by default to keep cost in line.
  name              = module.names.function_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_iam_role" "function" {
  name               = module.names.function_role_name
  assume_role_policy = module.iam.assume_role_policy
  tags               = var.tags
}

resource "aws_iam_role_policy" "function" {
  name   = "forwarder"
  role   = aws_iam_role.function.id
  policy = module.iam.policy
}

resource "aws_sqs_queue" "failures" {
  count                     = local.create_failure_queue ? 1 : 0
  name                      = module.names.failure_queue_name
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = var.kms_key_arn == null ? true : null
  kms_master_key_id         = var.kms_key_arn
  tags                      = var.tags
}

resource "aws_lambda_function" "this" {
  # checkov:skip=CKV_AWS_116:Failed asynchronous invocations go to an on-failure destination (aws_lambda_function_event_invoke_config below), which keeps the request and the error, unlike a DLQ.
  # checkov:skip=CKV_AWS_117:The forwarder only calls AWS APIs and vendor HTTPS intakes; a VPC would add NAT cost without isolating anything. Deployers who need one can wrap the module.
  # checkov:skip=CKV_AWS_272:The package is built from source by scripts/package.sh in the deployer's pipeline; there is no AWS Signer profile to validate against.
  function_name                  = module.names.function_name
  description                    = "tracehose forwarder: CloudWatch logs to observability backends, joined to traces"
  role                           = aws_iam_role.function.arn
  runtime                        = "provided.al2023"
  handler                        = "bootstrap"
  filename                       = var.package_path
  source_code_hash               = filebase64sha256(var.package_path)
  architectures                  = [var.architecture]
  memory_size                    = var.memory_size
  timeout                        = var.timeout
  reserved_concurrent_executions = var.reserved_concurrency
  kms_key_arn                    = var.kms_key_arn

  environment {
    variables = merge(var.environment, var.secret_arns, local.subscribe_environment)
  }

  logging_config {
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.function.name
  }

  tracing_config {
    mode = var.tracing ? "Active" : "PassThrough"
  }

  tags = var.tags

  # The role must be able to write logs before the first invocation.
  depends_on = [aws_iam_role_policy.function]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.maximum_retry_attempts
  maximum_event_age_in_seconds = var.maximum_event_age_seconds

  destination_config {
    on_failure {
      destination = local.failure_destination_arn
    }
  }

  # The destination is named by its plan-time ARN: the queue must exist before Lambda checks it.
  depends_on = [aws_sqs_queue.failures]
}

resource "aws_lambda_permission" "cloudwatch_logs" {
  count          = var.allow_cloudwatch_logs ? 1 : 0
  statement_id   = "AllowCloudWatchLogsSubscriptions"
  action         = "lambda:InvokeFunction"
  function_name  = aws_lambda_function.this.function_name
  principal      = "logs.amazonaws.com"
  source_account = local.account_id
  source_arn     = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"
}

resource "aws_lambda_function_url" "this" {
  count              = var.function_url ? 1 : 0
  function_name      = aws_lambda_function.this.function_name
  authorization_type = "NONE" # checkov:skip=CKV_AWS_258:Firehose HTTP endpoint delivery cannot sign requests; the forwarder authenticates each request by its Firehose access key.
}

resource "aws_cloudwatch_event_rule" "new_log_groups" {
  count         = local.auto_subscribe ? 1 : 0
  name          = module.names.new_log_group_rule_name
  description   = "New log groups under ${join(", ", var.subscribe_prefixes)}, for tracehose to subscribe"
  event_pattern = module.events[0].new_log_group_event_pattern
  tags          = var.tags
}

resource "aws_cloudwatch_event_target" "new_log_groups" {
  count = local.auto_subscribe ? 1 : 0
  rule  = aws_cloudwatch_event_rule.new_log_groups[0].name
  arn   = aws_lambda_function.this.arn
}

resource "aws_lambda_permission" "new_log_groups" {
  count         = local.auto_subscribe ? 1 : 0
  statement_id  = "AllowEventBridgeNewLogGroups"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.this.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.new_log_groups[0].arn
}
