data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  delivery_log_stream = "DestinationDelivery"

  # A Lambda function URL takes at most 6 MB per request and answers a larger one 413, which Firehose
  # never backs up (docs/formats.md section 5). The buffering size counts data before base64 and the JSON
  # around it: 3 MiB keeps every request under 6 MB, so the module never buffers more for a function URL.
  function_url_endpoint = can(regex("^https://[^/]+\\.lambda-url\\.[a-z0-9-]+\\.on\\.aws(/|$)", var.endpoint_url))
  buffering_size        = local.function_url_endpoint ? min(var.buffering_size, 3) : var.buffering_size
  backup_log_stream     = "BackupDelivery"

  # Built from partition, region, account and name, so they are known at plan time (see outputs.tf).
  delivery_stream_arn = "arn:${local.partition}:firehose:${local.region}:${local.account_id}:deliverystream/${module.names.delivery_stream_name}"
  role_arn            = "arn:${local.partition}:iam::${local.account_id}:role/${module.names.firehose_role_name}"
  backup_bucket_arn   = "arn:${local.partition}:s3:::${module.names.backup_bucket_name}"
}

module "names" {
  source     = "../internal/naming"
  name       = var.name
  account_id = local.account_id
  region     = local.region
}

module "iam" {
  source                      = "../internal/firehose-iam"
  partition                   = local.partition
  region                      = local.region
  account_id                  = local.account_id
  backup_bucket_arn           = local.backup_bucket_arn
  backup_kms_key_arn          = var.kms_key_arn
  error_log_group_name        = module.names.firehose_log_group_name
  access_key_secret_arn       = var.access_key_secret_arn
  access_key_kms_key_arn      = var.access_key_kms_key_arn
  transformation_function_arn = var.transformation_function_arn
}

# Failed deliveries only: what Firehose could not hand over after retry_duration, for `tracehose replay`.
resource "aws_s3_bucket" "backup" {
  # checkov:skip=CKV_AWS_18:Holds only failed deliveries, written by Firehose alone; access logging would need a second bucket per stream for little insight. CloudTrail data events cover audits.
  # checkov:skip=CKV_AWS_144:Failed-delivery backups are short-lived (lifecycle expiry) and replayed from this region; cross-region replication would double storage for no recovery gain.
  # checkov:skip=CKV2_AWS_62:Nothing reacts to new backups automatically; replay is an operator's decision, alerted by the stream's delivery metrics.
  # checkov:skip=CKV_AWS_145:Encrypted with S3-managed keys by default; set kms_key_arn to use a customer-managed key.
  bucket        = module.names.backup_bucket_name
  force_destroy = var.backup_force_destroy
  tags          = var.tags
}

resource "aws_s3_bucket_public_access_block" "backup" {
  bucket                  = aws_s3_bucket.backup.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "backup" {
  bucket = aws_s3_bucket.backup.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "backup" {
  bucket = aws_s3_bucket.backup.id

  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.kms_key_arn == null ? "AES256" : "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = var.kms_key_arn != null
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id

  rule {
    id     = "expire-failed-deliveries"
    status = "Enabled"

    filter {}

    expiration {
      days = var.backup_expiration_days
    }

    # Versioning keeps overwritten or deleted objects: expire those too, or they are kept forever.
    noncurrent_version_expiration {
      noncurrent_days = 7
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }

  depends_on = [aws_s3_bucket_versioning.backup]
}

resource "aws_s3_bucket_policy" "backup" {
  bucket = aws_s3_bucket.backup.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid       = "DenyInsecureTransport"
      Effect    = "Deny"
      Principal = "*"
      Action    = "s3:*"
      Resource  = [aws_s3_bucket.backup.arn, "${aws_s3_bucket.backup.arn}/*"]
      Condition = { Bool = { "aws:SecureTransport" = "false" } }
    }]
  })

  depends_on = [aws_s3_bucket_public_access_block.backup]
}

resource "aws_cloudwatch_log_group" "errors" {
  # checkov:skip=CKV_AWS_338:Delivery errors matter while they are investigated; error_log_retention_days (30 by default) sets how long.
  name              = module.names.firehose_log_group_name
  retention_in_days = var.error_log_retention_days
  kms_key_id        = var.kms_key_arn
  tags              = var.tags
}

resource "aws_cloudwatch_log_stream" "delivery" {
  name           = local.delivery_log_stream
  log_group_name = aws_cloudwatch_log_group.errors.name
}

resource "aws_cloudwatch_log_stream" "backup" {
  name           = local.backup_log_stream
  log_group_name = aws_cloudwatch_log_group.errors.name
}

resource "aws_iam_role" "firehose" {
  name               = module.names.firehose_role_name
  assume_role_policy = module.iam.assume_role_policy
  tags               = var.tags
}

resource "aws_iam_role_policy" "firehose" {
  name   = "delivery"
  role   = aws_iam_role.firehose.id
  policy = module.iam.policy
}

resource "aws_kinesis_firehose_delivery_stream" "this" {
  name        = module.names.delivery_stream_name
  destination = "http_endpoint"

  server_side_encryption {
    enabled  = true
    key_type = var.kms_key_arn == null ? "AWS_OWNED_CMK" : "CUSTOMER_MANAGED_CMK"
    key_arn  = var.kms_key_arn
  }

  http_endpoint_configuration {
    url                = var.endpoint_url
    name               = var.endpoint_name
    role_arn           = aws_iam_role.firehose.arn
    buffering_size     = local.buffering_size
    buffering_interval = var.buffering_interval
    retry_duration     = var.retry_duration
    s3_backup_mode     = "FailedDataOnly"

    secrets_manager_configuration {
      enabled    = true
      secret_arn = var.access_key_secret_arn
      role_arn   = aws_iam_role.firehose.arn
    }

    request_configuration {
      content_encoding = "GZIP"

      dynamic "common_attributes" {
        for_each = var.common_attributes
        content {
          name  = common_attributes.key
          value = common_attributes.value
        }
      }
    }

    cloudwatch_logging_options {
      enabled         = true
      log_group_name  = aws_cloudwatch_log_group.errors.name
      log_stream_name = aws_cloudwatch_log_stream.delivery.name
    }

    s3_configuration {
      role_arn            = aws_iam_role.firehose.arn
      bucket_arn          = aws_s3_bucket.backup.arn
      prefix              = "failed/"
      error_output_prefix = "errors/!{firehose:error-output-type}/"
      buffering_size      = 5
      buffering_interval  = 300
      compression_format  = "GZIP"
      kms_key_arn         = var.kms_key_arn

      cloudwatch_logging_options {
        enabled         = true
        log_group_name  = aws_cloudwatch_log_group.errors.name
        log_stream_name = aws_cloudwatch_log_stream.backup.name
      }
    }

    dynamic "processing_configuration" {
      for_each = var.transformation_function_arn == null ? [] : [var.transformation_function_arn]
      content {
        enabled = true

        processors {
          type = "Lambda"

          parameters {
            parameter_name  = "LambdaArn"
            parameter_value = processing_configuration.value
          }

          parameters {
            parameter_name  = "BufferSizeInMBs"
            parameter_value = tostring(var.transformation_buffer_size)
          }

          parameters {
            parameter_name  = "BufferIntervalInSeconds"
            parameter_value = tostring(var.transformation_buffer_interval)
          }
        }
      }
    }
  }

  tags = var.tags

  # Firehose validates its role on creation: the permissions must exist first.
  depends_on = [aws_iam_role_policy.firehose]
}
