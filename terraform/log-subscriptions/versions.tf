terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # aws_cloudwatch_log_account_policy and the aws_cloudwatch_log_groups data source need 5.37; 5.x and 6.x work.
      version = ">= 5.37, < 7.0"
    }
  }
}
