output "subscribed_log_group_names" {
  description = "Log groups that got a subscription filter from this module."
  value       = sort(tolist(local.subscribed))
}

output "excluded_log_group_names" {
  description = "Log groups left out on purpose (the forwarder's own among them)."
  value       = sort(tolist(local.excluded))
}

output "role_arn" {
  description = "Role CloudWatch Logs assumes to write to the Firehose destination (null for a Lambda destination); give it to `tracehose subscribe --role-arn` and the forwarder's subscribe_role_arn. Known at plan time."
  value       = length(aws_iam_role.logs) > 0 ? local.role_arn : null
  depends_on  = [aws_iam_role_policy.logs]
}

output "filter_name" {
  description = "Name of the subscription filters."
  value       = var.filter_name
}

output "account_policy_name" {
  description = "Name of the account-level subscription policy, null when account_policy is off."
  value       = var.account_policy ? aws_cloudwatch_log_account_policy.subscriptions[0].policy_name : null
}
