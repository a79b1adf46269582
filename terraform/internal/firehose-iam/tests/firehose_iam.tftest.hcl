variables {
  region               = "eu-west-1"
  account_id           = "123456789012"
  backup_bucket_arn    = "arn:aws:s3:::tracehose-backup-123456789012-eu-west-1"
  error_log_group_name = "/aws/kinesisfirehose/tracehose-logs"
}

run "backup_and_error_logging_only_by_default" {
  command = plan

  assert {
    condition     = output.statement_ids == ["WriteFailedDataBackups", "LogDeliveryErrors"]
    error_message = "unexpected statements: ${jsonencode(output.statement_ids)}"
  }

  assert {
    condition = jsondecode(output.policy).Statement[0].Resource == [
      "arn:aws:s3:::tracehose-backup-123456789012-eu-west-1",
      "arn:aws:s3:::tracehose-backup-123456789012-eu-west-1/*",
    ]
    error_message = "backup writes must be scoped to the backup bucket"
  }

  assert {
    condition     = jsondecode(output.assume_role_policy).Statement[0].Condition.StringEquals["sts:ExternalId"] == "123456789012"
    error_message = "the trust policy must pin the account"
  }
}

run "secret_and_transformation_are_scoped" {
  command = plan

  variables {
    access_key_secret_arn       = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:firehose-key-AbCdEf"
    transformation_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:tracehose"
    backup_kms_key_arn          = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }

  assert {
    condition     = [for s in jsondecode(output.policy).Statement : s.Resource if s.Sid == "ReadEndpointAccessKey"][0] == ["arn:aws:secretsmanager:eu-west-1:123456789012:secret:firehose-key-AbCdEf"]
    error_message = "the access key secret must be the only readable secret"
  }

  assert {
    condition = [for s in jsondecode(output.policy).Statement : s.Resource if s.Sid == "InvokeTransformation"][0] == [
      "arn:aws:lambda:eu-west-1:123456789012:function:tracehose",
      "arn:aws:lambda:eu-west-1:123456789012:function:tracehose:*",
    ]
    error_message = "only the forwarder may be invoked"
  }

  assert {
    condition     = alltrue(flatten([for s in jsondecode(output.policy).Statement : [for a in s.Action : !strcontains(a, "*")]]))
    error_message = "an action contains a wildcard"
  }
}

run "rejects_a_bucket_name_instead_of_an_arn" {
  command = plan

  variables {
    backup_bucket_arn = "tracehose-backup"
  }

  expect_failures = [var.backup_bucket_arn]
}
