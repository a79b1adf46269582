locals {
  arn_prefix = "arn:${var.partition}"
  logs_arn   = "${local.arn_prefix}:logs:${var.region}:${var.account_id}"

  # The function never creates log groups: Terraform owns its group, with retention.
  write_logs = [{
    Sid      = "WriteOwnLogs"
    Effect   = "Allow"
    Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    Resource = ["${local.logs_arn}:log-group:${var.log_group_name}:*"]
  }]

  read_secrets = length(var.secret_arns) == 0 ? [] : [{
    Sid      = "ReadConfiguredSecrets"
    Effect   = "Allow"
    Action   = ["secretsmanager:GetSecretValue"]
    Resource = sort(distinct(var.secret_arns))
  }]

  # Decrypt only through Secrets Manager, so the key cannot be used on anything else.
  decrypt_secrets = length(var.secret_kms_key_arns) == 0 ? [] : [{
    Sid       = "DecryptConfiguredSecrets"
    Effect    = "Allow"
    Action    = ["kms:Decrypt"]
    Resource  = sort(distinct(var.secret_kms_key_arns))
    Condition = { StringEquals = { "kms:ViaService" = "secretsmanager.${var.region}.amazonaws.com" } }
  }]

  failure_service = var.failure_destination_arn == null ? "" : split(":", var.failure_destination_arn)[2]
  report_failures = var.failure_destination_arn == null ? [] : [{
    Sid      = "SendFailedInvocations"
    Effect   = "Allow"
    Action   = local.failure_service == "sqs" ? ["sqs:SendMessage"] : ["sns:Publish"]
    Resource = [var.failure_destination_arn]
  }]

  encrypt_failures = var.failure_destination_kms_key_arn == null ? [] : [{
    Sid      = "EncryptFailedInvocations"
    Effect   = "Allow"
    Action   = ["kms:GenerateDataKey", "kms:Decrypt"]
    Resource = [var.failure_destination_kms_key_arn]
  }]

  subscribe = length(var.subscribe_prefixes) == 0 ? [] : [{
    Sid      = "SubscribeNewLogGroups"
    Effect   = "Allow"
    Action   = ["logs:DescribeSubscriptionFilters", "logs:PutSubscriptionFilter"]
    Resource = [for p in sort(distinct(var.subscribe_prefixes)) : "${local.logs_arn}:log-group:${p}*"]
  }]

  pass_subscribe_role = length(var.subscribe_prefixes) == 0 || var.subscribe_role_arn == null ? [] : [{
    Sid       = "HandSubscriptionRoleToLogs"
    Effect    = "Allow"
    Action    = ["iam:PassRole"]
    Resource  = [var.subscribe_role_arn]
    Condition = { StringEquals = { "iam:PassedToService" = "logs.amazonaws.com" } }
  }]

  # X-Ray's write calls have no resource-level permissions: "*" is the only valid resource.
  trace = var.tracing ? [{
    Sid      = "SendTraces"
    Effect   = "Allow"
    Action   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    Resource = ["*"]
  }] : []

  statements = concat(
    local.write_logs,
    local.read_secrets,
    local.decrypt_secrets,
    local.report_failures,
    local.encrypt_failures,
    local.subscribe,
    local.pass_subscribe_role,
    local.trace,
  )
}
