output "delivery_stream_arn" {
  description = "ARN of the delivery stream: the destination for log-subscriptions. Known at plan time; what uses it waits until the stream exists."
  value       = local.delivery_stream_arn
  depends_on  = [aws_kinesis_firehose_delivery_stream.this]
}

output "delivery_stream_name" {
  description = "Name of the delivery stream."
  value       = aws_kinesis_firehose_delivery_stream.this.name
}

output "role_arn" {
  description = "ARN of the role Firehose assumes, known at plan time."
  value       = local.role_arn
  depends_on  = [aws_iam_role_policy.firehose]
}

output "backup_bucket_name" {
  description = "Bucket with the data Firehose failed to deliver (input of `tracehose replay`), known at plan time."
  value       = aws_s3_bucket.backup.bucket
}

output "backup_bucket_arn" {
  description = "ARN of the backup bucket, known at plan time."
  value       = local.backup_bucket_arn
  depends_on  = [aws_s3_bucket.backup]
}

output "error_log_group_name" {
  description = "Log group of Firehose delivery errors: exclude it from subscriptions. Known at plan time."
  value       = aws_cloudwatch_log_group.errors.name
}
