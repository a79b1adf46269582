variable "partition" {
  description = "AWS partition of every ARN (aws, aws-cn, aws-us-gov)."
  type        = string
  default     = "aws"

  validation {
    condition     = contains(["aws", "aws-cn", "aws-us-gov"], var.partition)
    error_message = "partition: one of aws, aws-cn, aws-us-gov."
  }
}

variable "region" {
  description = "Region of the log groups."
  type        = string
}

variable "account_id" {
  description = "Account of the log groups; CloudWatch Logs may use the role only on their behalf."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id: 12 digits."
  }
}

variable "destination_arn" {
  description = "Where subscribed log groups send their events: the forwarder Lambda function or a Firehose delivery stream."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:(lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+|firehose:[a-z0-9-]+:[0-9]{12}:deliverystream/[A-Za-z0-9_.-]+)$", var.destination_arn))
    error_message = "destination_arn: a Lambda function ARN or a Firehose delivery stream ARN."
  }
}

variable "role_arn" {
  description = "Role CloudWatch Logs assumes for a Firehose destination (put into the account policy document); null for a Lambda destination."
  type        = string
  default     = null
}

variable "filter_pattern" {
  description = "Filter pattern of the subscriptions; empty sends every event."
  type        = string
  default     = ""
}

variable "excluded_log_group_names" {
  description = "Log groups the account-level policy must leave out: at least the forwarder's own, or it would feed on its own output."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for g in var.excluded_log_group_names : can(regex("^[A-Za-z0-9_./#-]{1,512}$", g))])
    error_message = "excluded_log_group_names: log group names (letters, digits, _ - / . #)."
  }
}
