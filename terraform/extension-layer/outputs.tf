output "layer_version_arn" {
  description = "ARN of this version of the layer: add it to a function's layers. Lambda numbers versions on publication, so it is known only after apply: do not feed it to count or for_each."
  value       = aws_lambda_layer_version.this.arn
}

output "layer_arn" {
  description = "ARN of the layer without version, known at plan time."
  value       = local.layer_arn
  depends_on  = [aws_lambda_layer_version.this]
}

output "version" {
  description = "Version number of the layer, known only after apply."
  value       = aws_lambda_layer_version.this.version
}
