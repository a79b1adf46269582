output "function_arn" {
  description = "The forwarder; `tracehose subscribe --destination` takes it."
  value       = module.forwarder.function_arn
}

output "failure_destination_arn" {
  description = "Queue of events the forwarder failed on."
  value       = module.forwarder.failure_destination_arn
}

output "subscribed_log_group_names" {
  description = "Log groups subscribed at apply time."
  value       = module.subscriptions.subscribed_log_group_names
}
