output "destination_type" {
  description = "\"lambda\" or \"firehose\": whether CloudWatch Logs needs a role (Firehose) or a resource permission on the function (Lambda)."
  value       = local.destination_type
}

output "needs_role" {
  description = "Whether the destination needs a role for CloudWatch Logs to assume."
  value       = local.is_firehose
}

output "assume_role_policy" {
  description = "Trust policy: CloudWatch Logs, acting for log groups of this account in this region."
  value = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "logs.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringLike = { "aws:SourceArn" = "arn:${var.partition}:logs:${var.region}:${var.account_id}:*" } }
    }]
  })
}

output "policy" {
  description = "Permissions of that role: put records into the destination stream, nothing else."
  value = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Sid      = "PutSubscribedEvents"
      Effect   = "Allow"
      Action   = ["firehose:PutRecord", "firehose:PutRecordBatch"]
      Resource = [var.destination_arn]
    }]
  })
}

output "account_policy_document" {
  description = "Policy document of an account-level subscription filter policy (JSON)."
  value       = jsonencode(local.account_policy)
}

output "selection_criteria" {
  description = "Selection criteria excluding the given log groups from the account-level policy; null when none are excluded."
  value       = local.selection_criteria
}

output "lambda_permission_source_arn" {
  description = "Source ARN pattern for the Lambda permission that lets any log group of this account and region invoke the forwarder."
  value       = "arn:${var.partition}:logs:${var.region}:${var.account_id}:log-group:*"
}
