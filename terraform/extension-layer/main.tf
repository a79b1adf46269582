data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  # Known at plan time (see outputs.tf); the version number, and so layer_version_arn, only after apply.
  layer_arn = "arn:${data.aws_partition.current.partition}:lambda:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:layer:${module.names.layer_name}"
}

module "names" {
  source = "../internal/naming"
  name   = var.name
}

resource "aws_lambda_layer_version" "this" {
  layer_name               = module.names.layer_name
  description              = "tracehose extension: one span per invocation, trace marker lines for the forwarder"
  filename                 = var.package_path
  source_code_hash         = filebase64sha256(var.package_path)
  compatible_runtimes      = var.compatible_runtimes
  compatible_architectures = var.architectures
  license_info             = var.license_info
}

resource "aws_lambda_layer_version_permission" "this" {
  for_each       = toset(var.principals)
  layer_name     = aws_lambda_layer_version.this.layer_arn
  version_number = aws_lambda_layer_version.this.version
  statement_id   = each.key == "*" ? "public" : "account-${each.key}"
  action         = "lambda:GetLayerVersion"
  principal      = each.key
}
