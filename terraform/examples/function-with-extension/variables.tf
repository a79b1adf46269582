variable "region" {
  description = "Region to deploy to."
  type        = string
  default     = "eu-west-1"
}

variable "layer_package_path" {
  description = "Extension layer zip from scripts/package.sh."
  type        = string
  default     = "../../../target/package/tracehose-extension-layer-x86_64.zip"
}

variable "forwarder_package_path" {
  description = "Forwarder zip from scripts/package.sh."
  type        = string
  default     = "../../../target/package/tracehose-forwarder-x86_64.zip"
}

variable "function_package_path" {
  description = "Zip of the function to instrument (for instance the sample function in samples/function)."
  type        = string
}

variable "function_runtime" {
  description = "Runtime of that function."
  type        = string
  default     = "python3.12"
}

variable "function_handler" {
  description = "Handler of that function."
  type        = string
  default     = "app.handler"
}

variable "otlp_endpoint" {
  description = "OTLP/HTTP endpoint receiving the extension's spans and the forwarder's logs."
  type        = string
}
