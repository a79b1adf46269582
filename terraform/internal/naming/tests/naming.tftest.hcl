run "defaults" {
  command = plan

  assert {
    condition     = output.function_log_group_name == "/aws/lambda/tracehose"
    error_message = "the forwarder's log group must be Lambda's default for the function"
  }

  assert {
    condition     = output.backup_bucket_name == "tracehose-backup-000000000000-us-east-1"
    error_message = "unexpected bucket name: ${output.backup_bucket_name}"
  }
}

run "long_name_keeps_bucket_within_63_characters" {
  command = plan

  variables {
    name       = "a-very-long-deployment-name-for-tests-x"
    account_id = "123456789012"
    region     = "ap-southeast-2"
  }

  assert {
    condition     = length(output.backup_bucket_name) <= 63
    error_message = "bucket name too long: ${output.backup_bucket_name}"
  }

  assert {
    condition     = endswith(output.backup_bucket_name, "-backup-123456789012-ap-southeast-2")
    error_message = "the unique suffix must survive truncation: ${output.backup_bucket_name}"
  }
}

run "rejects_names_s3_would_refuse" {
  command = plan

  variables {
    name = "Tracehose_Prod"
  }

  expect_failures = [var.name]
}

run "rejects_malformed_account" {
  command = plan

  variables {
    account_id = "12345"
  }

  expect_failures = [var.account_id]
}
