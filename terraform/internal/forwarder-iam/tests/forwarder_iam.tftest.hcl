variables {
  region         = "eu-west-1"
  account_id     = "123456789012"
  log_group_name = "/aws/lambda/tracehose"
}

run "minimal_role_writes_only_its_own_logs" {
  command = plan

  variables {
    tracing = false
  }

  assert {
    condition     = output.statement_ids == ["WriteOwnLogs"]
    error_message = "unexpected statements: ${jsonencode(output.statement_ids)}"
  }

  assert {
    condition = jsondecode(output.policy).Statement[0].Resource == [
      "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/tracehose:*"
    ]
    error_message = "log writes must be scoped to the forwarder's own log group"
  }

  assert {
    condition     = jsondecode(output.assume_role_policy).Statement[0].Principal.Service == "lambda.amazonaws.com"
    error_message = "only Lambda may assume the role"
  }
}

run "secrets_are_scoped_to_exactly_the_given_arns" {
  command = plan

  variables {
    secret_arns = [
      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dt-token-AbCdEf",
      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dd-key-123456",
      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dt-token-AbCdEf",
    ]
    secret_kms_key_arns = ["arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"]
  }

  assert {
    condition = [for s in jsondecode(output.policy).Statement : s.Resource if s.Sid == "ReadConfiguredSecrets"][0] == [
      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dd-key-123456",
      "arn:aws:secretsmanager:eu-west-1:123456789012:secret:dt-token-AbCdEf",
    ]
    error_message = "secret access must list exactly the configured secrets"
  }

  assert {
    condition     = [for s in jsondecode(output.policy).Statement : s.Condition["StringEquals"]["kms:ViaService"] if s.Sid == "DecryptConfiguredSecrets"][0] == "secretsmanager.eu-west-1.amazonaws.com"
    error_message = "the secrets key must be usable only through Secrets Manager"
  }
}

run "no_statement_allows_every_action" {
  command = plan

  variables {
    secret_arns             = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:x-AbCdEf"]
    failure_destination_arn = "arn:aws:sqs:eu-west-1:123456789012:tracehose-failures"
    subscribe_prefixes      = ["/aws/lambda/"]
    subscribe_role_arn      = "arn:aws:iam::123456789012:role/logs-to-firehose"
  }

  assert {
    condition     = alltrue(flatten([for s in jsondecode(output.policy).Statement : [for a in s.Action : !strcontains(a, "*")]]))
    error_message = "an action contains a wildcard"
  }

  assert {
    condition     = [for s in jsondecode(output.policy).Statement : s.Action if s.Sid == "SendFailedInvocations"][0] == ["sqs:SendMessage"]
    error_message = "an SQS failure destination needs sqs:SendMessage"
  }

  assert {
    condition     = [for s in jsondecode(output.policy).Statement : s.Resource if s.Sid == "SubscribeNewLogGroups"][0] == ["arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/*"]
    error_message = "subscription rights must be limited to the configured prefixes"
  }

  assert {
    condition     = contains(output.statement_ids, "HandSubscriptionRoleToLogs")
    error_message = "a Firehose subscription role must be passable to CloudWatch Logs"
  }
}

run "sns_failure_destination" {
  command = plan

  variables {
    failure_destination_arn = "arn:aws:sns:eu-west-1:123456789012:alerts"
  }

  assert {
    condition     = [for s in jsondecode(output.policy).Statement : s.Action if s.Sid == "SendFailedInvocations"][0] == ["sns:Publish"]
    error_message = "an SNS failure destination needs sns:Publish"
  }
}

run "rejects_wildcard_secrets" {
  command = plan

  variables {
    secret_arns = ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:*"]
  }

  expect_failures = [var.secret_arns]
}
