locals {
  # What the forwarder's `subscribe::is_create_log_group_event` recognises, narrowed to the configured prefixes
  # so that the function is not invoked for log groups it would not subscribe anyway.
  new_log_group_pattern = {
    source        = ["aws.logs"]
    "detail-type" = ["AWS API Call via CloudTrail"]
    detail = {
      eventSource       = ["logs.amazonaws.com"]
      eventName         = ["CreateLogGroup"]
      requestParameters = { logGroupName = [for p in sort(distinct(var.subscribe_prefixes)) : { prefix = p }] }
    }
  }
}
