terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # secrets_manager_configuration of HTTP endpoint destinations needs 5.55; 5.x and 6.x both work.
      version = ">= 5.55, < 7.0"
    }
  }
}
