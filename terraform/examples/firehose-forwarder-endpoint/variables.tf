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

variable "access_key_secret_arn" {
  description = "Secrets Manager secret, JSON {\"api_key\": \"<random string>\"}: Firehose sends the key, the forwarder checks it."
  type        = string
}

variable "otlp_endpoint" {
  description = "OTLP/HTTP endpoint the forwarder ships logs to."
  type        = string
}

variable "log_group_names" {
  description = "Log groups to send through Firehose."
  type        = list(string)
}
