output "function_name" {
  description = "Name of the forwarder function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the forwarder function: the destination of direct subscriptions and the Firehose transformation."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the forwarder's execution role."
  value       = aws_iam_role.function.arn
}

output "log_group_name" {
  description = "The forwarder's own log group: exclude it from every subscription."
  value       = aws_cloudwatch_log_group.function.name
}

output "function_url" {
  description = "HTTPS URL of the function (the Firehose HTTP endpoint), null unless function_url is set."
  value       = var.function_url ? aws_lambda_function_url.this[0].function_url : null
}

output "failure_destination_arn" {
  description = "Where failed asynchronous invocations go (the created SQS queue unless one was given)."
  value       = local.failure_destination_arn
}

output "new_log_group_rule_arn" {
  description = "ARN of the EventBridge rule for new log groups, null when automatic subscription is off."
  value       = local.auto_subscribe ? aws_cloudwatch_event_rule.new_log_groups[0].arn : null
}
