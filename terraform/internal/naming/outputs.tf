output "function_name" {
  description = "Name of the forwarder Lambda function."
  value       = var.name
}

output "function_log_group_name" {
  description = "The forwarder's own log group: never subscribed to the forwarder, or it would read its own output in a loop."
  value       = "/aws/lambda/${var.name}"
}

output "function_role_name" {
  description = "Name of the forwarder's execution role."
  value       = "${var.name}-forwarder"
}

output "failure_queue_name" {
  description = "Name of the SQS queue receiving direct-subscription events the forwarder failed on."
  value       = "${var.name}-failures"
}

output "new_log_group_rule_name" {
  description = "Name of the EventBridge rule that sends CreateLogGroup events to the forwarder."
  value       = "${var.name}-new-log-groups"
}

output "delivery_stream_name" {
  description = "Name of the Firehose delivery stream."
  value       = "${var.name}-logs"
}

output "firehose_role_name" {
  description = "Name of the role Firehose assumes."
  value       = "${var.name}-firehose"
}

output "firehose_log_group_name" {
  description = "Log group for Firehose delivery errors."
  value       = "/aws/kinesisfirehose/${var.name}-logs"
}

output "backup_bucket_name" {
  description = "Name of the S3 bucket for data Firehose failed to deliver (globally unique, at most 63 characters)."
  value       = local.bucket_name
}

output "subscription_role_name" {
  description = "Name of the role CloudWatch Logs assumes to write to a Firehose stream."
  value       = "${var.name}-logs-to-firehose"
}

output "subscription_filter_name" {
  description = "Name of tracehose's subscription filters: how `tracehose subscribe` recognises its own filter."
  value       = "tracehose"
}

output "account_policy_name" {
  description = "Name of the account-level subscription filter policy."
  value       = "${var.name}-all-log-groups"
}

output "layer_name" {
  description = "Name of the extension layer."
  value       = "${var.name}-extension"
}
