terraform {
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.55, < 7.0"
    }
  }
}

provider "aws" {
  region = var.region
}
