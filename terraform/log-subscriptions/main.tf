data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  # The destination's kind decides whether a role is created (count) and which function's log group is left
  # out (for_each): both need destination_arn known at plan time, as the forwarder and firehose-http-endpoint
  # modules' outputs are. A Lambda destination's default log group is the forwarder's own: subscribing it would
  # loop.
  destination_parts = split(":", var.destination_arn)
  role_arn          = "arn:${local.partition}:iam::${local.account_id}:role/${module.names.subscription_role_name}"
  destination_own_group = (
    local.destination_parts[2] == "lambda" ? ["/aws/lambda/${local.destination_parts[6]}"] : []
  )
  excluded = toset(concat(var.excluded_log_group_names, local.destination_own_group))

  prefixed = flatten([for d in data.aws_cloudwatch_log_groups.prefix : d.log_group_names])
  subscribed = setsubtract(
    toset(concat(var.log_group_names, local.prefixed)),
    local.excluded,
  )
}

# One module call serves the role (trust, permissions) and the account policy that names the role: Terraform
# resolves module outputs one by one, so this is no cycle.
module "iam" {
  source                   = "../internal/subscription-iam"
  partition                = local.partition
  region                   = local.region
  account_id               = local.account_id
  destination_arn          = var.destination_arn
  role_arn                 = length(aws_iam_role.logs) > 0 ? aws_iam_role.logs[0].arn : null
  filter_pattern           = var.filter_pattern
  excluded_log_group_names = tolist(local.excluded)
}

module "names" {
  source     = "../internal/naming"
  name       = var.name
  account_id = local.account_id
  region     = local.region
}

data "aws_cloudwatch_log_groups" "prefix" {
  for_each              = toset(var.log_group_prefixes)
  log_group_name_prefix = each.key
}

resource "aws_iam_role" "logs" {
  count              = local.destination_parts[2] == "firehose" ? 1 : 0
  name               = module.names.subscription_role_name
  assume_role_policy = module.iam.assume_role_policy
  tags               = var.tags
}

resource "aws_iam_role_policy" "logs" {
  count  = length(aws_iam_role.logs)
  name   = "put-into-firehose"
  role   = aws_iam_role.logs[0].id
  policy = module.iam.policy
}

resource "aws_cloudwatch_log_subscription_filter" "this" {
  for_each        = local.subscribed
  name            = var.filter_name
  log_group_name  = each.key
  filter_pattern  = var.filter_pattern
  destination_arn = var.destination_arn
  role_arn        = length(aws_iam_role.logs) > 0 ? aws_iam_role.logs[0].arn : null

  depends_on = [aws_iam_role_policy.logs]
}

resource "aws_cloudwatch_log_account_policy" "subscriptions" {
  count              = var.account_policy ? 1 : 0
  policy_name        = module.names.account_policy_name
  policy_type        = "SUBSCRIPTION_FILTER_POLICY"
  policy_document    = module.iam.account_policy_document
  selection_criteria = module.iam.selection_criteria

  lifecycle {
    # An account policy with no exclusion would subscribe the forwarder's own log group: a loop.
    precondition {
      condition     = length(local.excluded) > 0
      error_message = "account_policy subscribes every log group: list the forwarder's own log group in excluded_log_group_names."
    }
  }

  depends_on = [aws_iam_role_policy.logs]
}
