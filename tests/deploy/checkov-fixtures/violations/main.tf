# Each resource here breaks one of the project's checkov policies; tests/suites/50-terraform.sh expects every one
# of them to be reported, so a policy that stops detecting its violation fails the suite.

variable "extra_statements" {
  type    = list(any)
  default = []
}

locals {
  statements = concat([{ Sid = "Logs", Effect = "Allow", Action = ["logs:*"], Resource = ["*"] }], var.extra_statements)
}

resource "aws_kinesis_firehose_delivery_stream" "no_backup" {
  name        = "no-backup"
  destination = "http_endpoint"

  http_endpoint_configuration {
    url      = "https://example.com/ingest"
    name     = "example"
    role_arn = "arn:aws:iam::123456789012:role/firehose"
  }
}

resource "aws_kinesis_firehose_delivery_stream" "backup_disabled" {
  name        = "backup-disabled"
  destination = "splunk"

  splunk_configuration {
    hec_endpoint   = "https://splunk.example.com:8088"
    hec_token      = "token"
    s3_backup_mode = "Disabled"

    s3_configuration {
      role_arn   = "arn:aws:iam::123456789012:role/firehose"
      bucket_arn = "arn:aws:s3:::backup"
    }
  }
}

resource "aws_iam_role_policy" "service_wildcard" {
  name = "service-wildcard"
  role = "some-role"
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "s3:*", Resource = "arn:aws:s3:::bucket/*" }]
  })
}

resource "aws_iam_policy" "everything" {
  name = "everything"
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = ["sqs:SendMessage", "*"], Resource = "*" }]
  })
}

resource "aws_iam_role_policy" "not_action" {
  name = "not-action"
  role = "some-role"
  policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", NotAction = ["iam:*"], Resource = "*" }]
  })
}

resource "aws_iam_role_policy" "from_locals" {
  name   = "from-locals"
  role   = "some-role"
  policy = jsonencode({ Version = "2012-10-17", Statement = local.statements })
}

data "aws_iam_policy_document" "wildcard" {
  statement {
    actions   = ["kms:*"]
    resources = ["*"]
  }
}
