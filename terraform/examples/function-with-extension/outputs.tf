output "function_name" {
  description = "The instrumented sample function: invoke it and look for its spans and correlated logs."
  value       = aws_lambda_function.sample.function_name
}

output "layer_version_arn" {
  description = "The extension layer version used."
  value       = module.layer.layer_version_arn
}
