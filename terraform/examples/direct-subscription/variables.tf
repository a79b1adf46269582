variable "region" {
  description = "Region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "forwarder_package_path" {
  description = "Forwarder zip from scripts/package.sh."
  type        = string
  default     = "../../../target/package/tracehose-forwarder-x86_64.zip"
}

variable "dynatrace_base_url" {
  description = "Dynatrace environment URL, e.g. https://abc12345.live.dynatrace.com."
  type        = string
}

variable "dynatrace_token_secret_arn" {
  description = "Secrets Manager secret with a Dynatrace token that has the logs.ingest scope."
  type        = string
}

variable "log_group_prefixes" {
  description = "Existing log groups to subscribe now, and new ones to subscribe when they are created."
  type        = list(string)
  default     = ["/aws/lambda/"]
}
