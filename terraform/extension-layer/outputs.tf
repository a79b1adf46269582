output "layer_version_arn" {
  description = "ARN of this version of the layer: add it to a function's layers."
  value       = aws_lambda_layer_version.this.arn
}

output "layer_arn" {
  description = "ARN of the layer without version."
  value       = aws_lambda_layer_version.this.layer_arn
}

output "version" {
  description = "Version number of the layer."
  value       = aws_lambda_layer_version.this.version
}
