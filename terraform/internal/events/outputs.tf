output "new_log_group_event_pattern" {
  description = "EventBridge event pattern (JSON) matching CloudTrail's CreateLogGroup events for log groups under the prefixes."
  value       = jsonencode(local.new_log_group_pattern)
}
