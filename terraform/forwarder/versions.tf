terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # logging_config (custom log group of a function) needs 5.27; 5.x and 6.x both work.
      version = ">= 5.27, < 7.0"
    }
  }
}
