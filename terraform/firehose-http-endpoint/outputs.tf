output "delivery_stream_arn" {
  description = "ARN of the delivery stream: the destination for log-subscriptions."
  value       = aws_kinesis_firehose_delivery_stream.this.arn
}

output "delivery_stream_name" {
  description = "Name of the delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "role_arn" {
  description = "ARN of the role Firehose assumes."
  value       = aws_iam_role.firehose.arn
}

output "backup_bucket_name" {
  description = "Bucket with the data Firehose failed to deliver (input of `tracehose replay`)."
  value       = aws_s3_bucket.backup.id
}

output "backup_bucket_arn" {
  description = "ARN of the backup bucket."
  value       = aws_s3_bucket.backup.arn
}

output "error_log_group_name" {
  description = "Log group of Firehose delivery errors: exclude it from subscriptions."
  value       = aws_cloudwatch_log_group.errors.name
}
