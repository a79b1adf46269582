# The same kinds of resources, within the project's policies: none may be reported.

resource "aws_kinesis_firehose_delivery_stream" "with_backup" {
  name        = "with-backup"
  destination = "http_endpoint"

  http_endpoint_configuration {
    url            = "https://example.com/ingest"
    name           = "example"
    role_arn       = "arn:aws:iam::123456789012:role/firehose"
    s3_backup_mode = "FailedDataOnly"

    s3_configuration {
      role_arn   = "arn:aws:iam::123456789012:role/firehose"
      bucket_arn = "arn:aws:s3:::backup"
    }
  }
}

resource "aws_kinesis_firehose_delivery_stream" "to_s3" {
  name        = "to-s3"
  destination = "extended_s3"

  extended_s3_configuration {
    role_arn   = "arn:aws:iam::123456789012:role/firehose"
    bucket_arn = "arn:aws:s3:::archive"
  }
}

resource "aws_iam_role_policy" "narrow" {
  name = "narrow"
  role = "some-role"
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      { Effect = "Allow", Action = ["logs:PutLogEvents"], Resource = ["arn:aws:logs:eu-west-1:123456789012:log-group:/x:*"] },
      { Effect = "Allow", Action = ["xray:PutTraceSegments"], Resource = ["*"] },
      { Effect = "Deny", Action = ["s3:*"], Resource = ["*"] },
    ]
  })
}

data "aws_iam_policy_document" "narrow" {
  statement {
    actions   = ["kms:Decrypt"]
    resources = ["arn:aws:kms:eu-west-1:123456789012:key/abc"]
  }
}
