output "function_name" {
  description = "Name of the forwarder function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the forwarder function: the destination of direct subscriptions and the Firehose transformation. Known at plan time; what uses it waits until the function exists and CloudWatch Logs may invoke it."
  value       = local.function_arn
  depends_on  = [aws_lambda_function.this, aws_lambda_permission.cloudwatch_logs]
}

output "role_arn" {
  description = "ARN of the forwarder's execution role, known at plan time."
  value       = local.role_arn
  depends_on  = [aws_iam_role_policy.function]
}

output "log_group_name" {
  description = "The forwarder's own log group: exclude it from every subscription. Known at plan time."
  value       = aws_cloudwatch_log_group.function.name
}

output "function_url" {
  description = "HTTPS URL of the function (the Firehose HTTP endpoint), null unless function_url is set. Lambda makes the URL up on creation, so it is known only after apply: do not feed it to count or for_each."
  value       = var.function_url ? aws_lambda_function_url.this[0].function_url : null
}

output "failure_destination_arn" {
  description = "Where failed asynchronous invocations go: the created SQS queue, whose ARN is known at plan time, unless one was given."
  value       = local.failure_destination_arn
  depends_on  = [aws_sqs_queue.failures]
}

output "new_log_group_rule_arn" {
  description = "ARN of the EventBridge rule for new log groups, null when automatic subscription is off; known at plan time."
  value       = local.auto_subscribe ? local.new_log_group_rule_arn : null
  depends_on  = [aws_cloudwatch_event_target.new_log_groups, aws_lambda_permission.new_log_groups]
}
