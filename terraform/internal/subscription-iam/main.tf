locals {
  destination_type = split(":", var.destination_arn)[2]
  is_firehose      = local.destination_type == "firehose"

  # Selection criteria of an account policy take a quoted, comma-separated list.
  excluded            = sort(distinct(var.excluded_log_group_names))
  selection_criteria  = length(local.excluded) == 0 ? null : "LogGroupName NOT IN [${join(", ", [for g in local.excluded : jsonencode(g)])}]"
  account_policy_base = { DestinationArn = var.destination_arn, FilterPattern = var.filter_pattern, Distribution = "Random" }
  account_policy      = local.is_firehose ? merge(local.account_policy_base, { RoleArn = var.role_arn }) : local.account_policy_base
}
