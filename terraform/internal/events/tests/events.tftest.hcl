run "pattern_matches_create_log_group_under_the_prefixes" {
  command = plan

  variables {
    subscribe_prefixes = ["/ecs/", "/aws/lambda/", "/ecs/"]
  }

  assert {
    condition = jsondecode(output.new_log_group_event_pattern) == {
      source        = ["aws.logs"]
      "detail-type" = ["AWS API Call via CloudTrail"]
      detail = {
        eventSource       = ["logs.amazonaws.com"]
        eventName         = ["CreateLogGroup"]
        requestParameters = { logGroupName = [{ prefix = "/aws/lambda/" }, { prefix = "/ecs/" }] }
      }
    }
    error_message = "unexpected pattern: ${output.new_log_group_event_pattern}"
  }
}

run "needs_a_prefix" {
  command = plan

  variables {
    subscribe_prefixes = []
  }

  expect_failures = [var.subscribe_prefixes]
}
