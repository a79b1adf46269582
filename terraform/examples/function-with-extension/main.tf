# A function with the extension layer: the extension records a span per invocation and prints a marker line;
# the function's log group is subscribed to the forwarder, which joins every log line to its invocation's trace.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  function_name = "tracehose-sample"
  log_group     = "/aws/lambda/${local.function_name}"
  log_group_arn = "arn:${data.aws_partition.current.partition}:logs:${var.region}:${data.aws_caller_identity.current.account_id}:log-group:${local.log_group}"
}

module "layer" {
  source       = "../../extension-layer"
  package_path = var.layer_package_path
}

module "forwarder" {
  source       = "../../forwarder"
  package_path = var.forwarder_package_path
  environment = {
    OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint
  }
}

resource "aws_cloudwatch_log_group" "sample" {
  # checkov:skip=CKV_AWS_338:A sample function's logs; a week is plenty and they are forwarded anyway.
  # checkov:skip=CKV_AWS_158:Example stack: AWS-managed encryption of CloudWatch Logs is enough for a sample.
  name              = local.log_group
  retention_in_days = 7
}

resource "aws_iam_role" "sample" {
  name = "${local.function_name}-role"
  assume_role_policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
    }]
  })
}

resource "aws_iam_role_policy" "sample" {
  name = "write-own-logs"
  role = aws_iam_role.sample.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect   = "Allow"
      Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      Resource = ["${local.log_group_arn}:*"]
    }]
  })
}

resource "aws_lambda_function" "sample" {
  # checkov:skip=CKV_AWS_116:A sample invoked synchronously; there are no asynchronous events to keep.
  # checkov:skip=CKV_AWS_117:The sample needs no network isolation.
  # checkov:skip=CKV_AWS_272:Sample code built locally, not signed.
  # checkov:skip=CKV_AWS_173:The environment holds only an endpoint URL, nothing secret.
  # checkov:skip=CKV_AWS_115:A sample does not need reserved concurrency.
  # checkov:skip=CKV_AWS_50:The extension does the tracing this example is about; X-Ray would be a second trace.
  function_name    = local.function_name
  role             = aws_iam_role.sample.arn
  runtime          = var.function_runtime
  handler          = var.function_handler
  filename         = var.function_package_path
  source_code_hash = filebase64sha256(var.function_package_path)
  layers           = [module.layer.layer_version_arn]
  timeout          = 10

  environment {
    variables = {
      OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint
      OTEL_SERVICE_NAME           = local.function_name
    }
  }

  depends_on = [aws_iam_role_policy.sample, aws_cloudwatch_log_group.sample]
}

module "subscriptions" {
  source                   = "../../log-subscriptions"
  destination_arn          = module.forwarder.function_arn
  log_group_names          = [aws_cloudwatch_log_group.sample.name]
  excluded_log_group_names = [module.forwarder.log_group_name]
}
