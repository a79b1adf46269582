# Provider-free on purpose: only locals and outputs, so `terraform test` runs without downloading anything.
terraform {
  required_version = ">= 1.6"
}
