locals {
  logs_arn = "arn:${var.partition}:logs:${var.region}:${var.account_id}"

  backup = [{
    Sid    = "WriteFailedDataBackups"
    Effect = "Allow"
    Action = [
      "s3:AbortMultipartUpload",
      "s3:GetBucketLocation",
      "s3:GetObject",
      "s3:ListBucket",
      "s3:ListBucketMultipartUploads",
      "s3:PutObject",
    ]
    Resource = [var.backup_bucket_arn, "${var.backup_bucket_arn}/*"]
  }]

  encrypt_backup = var.backup_kms_key_arn == null ? [] : [{
    Sid       = "EncryptFailedDataBackups"
    Effect    = "Allow"
    Action    = ["kms:GenerateDataKey", "kms:Decrypt"]
    Resource  = [var.backup_kms_key_arn]
    Condition = { StringEquals = { "kms:ViaService" = "s3.${var.region}.amazonaws.com" } }
  }]

  log_errors = [{
    Sid      = "LogDeliveryErrors"
    Effect   = "Allow"
    Action   = ["logs:PutLogEvents"]
    Resource = ["${local.logs_arn}:log-group:${var.error_log_group_name}:*"]
  }]

  read_access_key = var.access_key_secret_arn == null ? [] : [{
    Sid      = "ReadEndpointAccessKey"
    Effect   = "Allow"
    Action   = ["secretsmanager:GetSecretValue"]
    Resource = [var.access_key_secret_arn]
  }]

  decrypt_access_key = var.access_key_kms_key_arn == null ? [] : [{
    Sid       = "DecryptEndpointAccessKey"
    Effect    = "Allow"
    Action    = ["kms:Decrypt"]
    Resource  = [var.access_key_kms_key_arn]
    Condition = { StringEquals = { "kms:ViaService" = "secretsmanager.${var.region}.amazonaws.com" } }
  }]

  # Firehose checks the function's configuration before invoking it, hence the second action.
  transform = var.transformation_function_arn == null ? [] : [{
    Sid      = "InvokeTransformation"
    Effect   = "Allow"
    Action   = ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"]
    Resource = [var.transformation_function_arn, "${var.transformation_function_arn}:*"]
  }]

  statements = concat(
    local.backup,
    local.encrypt_backup,
    local.log_errors,
    local.read_access_key,
    local.decrypt_access_key,
    local.transform,
  )
}
