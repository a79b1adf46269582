variables {
  region     = "eu-west-1"
  account_id = "123456789012"
}

run "firehose_destination_gets_a_scoped_role" {
  command = plan

  variables {
    destination_arn          = "arn:aws:firehose:eu-west-1:123456789012:deliverystream/tracehose-logs"
    role_arn                 = "arn:aws:iam::123456789012:role/tracehose-logs-to-firehose"
    excluded_log_group_names = ["/aws/lambda/tracehose", "/aws/kinesisfirehose/tracehose-logs"]
  }

  assert {
    condition     = output.needs_role
    error_message = "a Firehose destination needs a role"
  }

  assert {
    condition     = jsondecode(output.policy).Statement[0].Resource == ["arn:aws:firehose:eu-west-1:123456789012:deliverystream/tracehose-logs"]
    error_message = "the role may write only to the destination stream"
  }

  assert {
    condition     = jsondecode(output.assume_role_policy).Statement[0].Condition.StringLike["aws:SourceArn"] == "arn:aws:logs:eu-west-1:123456789012:*"
    error_message = "the trust policy must be limited to this account's log groups"
  }

  assert {
    condition     = output.selection_criteria == "LogGroupName NOT IN [\"/aws/kinesisfirehose/tracehose-logs\", \"/aws/lambda/tracehose\"]"
    error_message = "unexpected selection criteria: ${output.selection_criteria}"
  }

  assert {
    condition     = jsondecode(output.account_policy_document).RoleArn == "arn:aws:iam::123456789012:role/tracehose-logs-to-firehose"
    error_message = "the account policy must carry the role for Firehose"
  }
}

run "lambda_destination_needs_no_role" {
  command = plan

  variables {
    destination_arn = "arn:aws:lambda:eu-west-1:123456789012:function:tracehose"
    filter_pattern  = "-\"DEBUG\""
  }

  assert {
    condition     = !output.needs_role && output.destination_type == "lambda"
    error_message = "a Lambda destination is reached through a resource permission, not a role"
  }

  assert {
    condition     = jsondecode(output.account_policy_document) == { DestinationArn = "arn:aws:lambda:eu-west-1:123456789012:function:tracehose", FilterPattern = "-\"DEBUG\"", Distribution = "Random" }
    error_message = "unexpected account policy: ${output.account_policy_document}"
  }

  assert {
    condition     = output.selection_criteria == null
    error_message = "no exclusion, no criteria"
  }
}

run "rejects_other_destinations" {
  command = plan

  variables {
    destination_arn = "arn:aws:sqs:eu-west-1:123456789012:queue"
  }

  expect_failures = [var.destination_arn]
}
