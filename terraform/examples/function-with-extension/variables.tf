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
  description = "Zip of the function to instrument; by default the sample function of samples/function, as its build command in this example's README writes it."
  type        = string
  default     = "../../../target/sample-function/lambda/bootstrap/bootstrap.zip"
}

variable "function_runtime" {
  description = "Runtime of that function (the sample is a Rust `bootstrap` executable)."
  type        = string
  default     = "provided.al2023"
}

variable "function_handler" {
  description = "Handler of that function."
  type        = string
  default     = "bootstrap"
}

variable "otlp_endpoint" {
  description = "OTLP/HTTP endpoint receiving the extension's spans and the forwarder's logs."
  type        = string
}
