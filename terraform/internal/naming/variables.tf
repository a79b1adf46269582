variable "name" {
  description = "Base name of the deployment; every resource name is derived from it."
  type        = string
  default     = "tracehose"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,37}[a-z0-9]$", var.name))
    error_message = "name: 2 to 39 characters, lowercase letters, digits and '-', starting with a letter (it becomes part of S3 bucket and Lambda names)."
  }
}

variable "account_id" {
  description = "AWS account id, part of globally unique names (the backup bucket)."
  type        = string
  default     = "000000000000"

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id: 12 digits."
  }
}

variable "region" {
  description = "AWS region, part of globally unique names (the backup bucket)."
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]$", var.region))
    error_message = "region: an AWS region name such as eu-west-1."
  }
}
