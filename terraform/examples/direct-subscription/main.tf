# Direct subscription: log groups -> subscription filter -> forwarder -> Dynatrace. New log groups under the
# prefixes are subscribed by the forwarder itself when CloudTrail reports their creation.

module "forwarder" {
  source       = "../../forwarder"
  package_path = var.forwarder_package_path

  environment = {
    DT_CONNECTION_BASE_URL = var.dynatrace_base_url
  }
  secret_arns = {
    DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN = var.dynatrace_token_secret_arn
  }

  subscribe_prefixes = var.log_group_prefixes
}

module "subscriptions" {
  source                   = "../../log-subscriptions"
  destination_arn          = module.forwarder.function_arn
  log_group_prefixes       = var.log_group_prefixes
  excluded_log_group_names = [module.forwarder.log_group_name]
}
