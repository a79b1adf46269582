# Firehose with the forwarder as HTTP endpoint: log groups -> subscription filter -> Firehose (buffering,
# retries, S3 backup of failures) -> forwarder function URL -> OTLP backend.

module "forwarder" {
  source       = "../../forwarder"
  name         = "tracehose-http"
  package_path = var.forwarder_package_path
  function_url = true
  # Firehose waits up to 3 minutes for an answer; the forwarder must answer before that.
  timeout = 170

  environment = {
    OTEL_EXPORTER_OTLP_ENDPOINT = var.otlp_endpoint
  }
  secret_arns = {
    # The same secret the stream sends its access key from (JSON {"api_key": "..."}).
    TRACEHOSE_ACCESS_KEYS_SECRET_ARN = var.access_key_secret_arn
  }
}

module "firehose" {
  source                = "../../firehose-http-endpoint"
  endpoint_url          = module.forwarder.function_url
  access_key_secret_arn = var.access_key_secret_arn
  common_attributes = {
    "deployment.environment" = "example"
  }
}

module "subscriptions" {
  source          = "../../log-subscriptions"
  destination_arn = module.firehose.delivery_stream_arn
  log_group_names = var.log_group_names
  excluded_log_group_names = [
    module.forwarder.log_group_name,
    module.firehose.error_log_group_name,
  ]
}
