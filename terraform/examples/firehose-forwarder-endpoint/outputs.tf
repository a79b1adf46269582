output "delivery_stream_arn" {
  description = "Firehose stream receiving the subscribed log groups."
  value       = module.firehose.delivery_stream_arn
}

output "function_url" {
  description = "The forwarder's HTTP endpoint."
  value       = module.forwarder.function_url
}

output "backup_bucket_name" {
  description = "Failed deliveries, for `tracehose replay`."
  value       = module.firehose.backup_bucket_name
}

output "subscription_role_arn" {
  description = "Role for `tracehose subscribe --role-arn` with this stream as destination."
  value       = module.subscriptions.role_arn
}
