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
