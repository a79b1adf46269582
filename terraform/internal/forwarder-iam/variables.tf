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
  description = "Region of the forwarder."
  type        = string
}

variable "account_id" {
  description = "Account of the forwarder."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id: 12 digits."
  }
}

variable "log_group_name" {
  description = "The forwarder's own log group, the only one it writes to."
  type        = string
}

variable "secret_arns" {
  description = "Secrets Manager ARNs the forwarder reads at start; the policy allows exactly these."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.secret_arns : can(regex("^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:.+$", arn))])
    error_message = "secret_arns: full Secrets Manager secret ARNs (no wildcards)."
  }

  validation {
    condition     = alltrue([for arn in var.secret_arns : !strcontains(arn, "*")])
    error_message = "secret_arns: wildcards would widen access beyond the named secrets."
  }
}

variable "secret_kms_key_arns" {
  description = "Customer-managed KMS keys encrypting those secrets; empty when they use the AWS-managed key."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.secret_kms_key_arns : can(regex("^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", arn))])
    error_message = "secret_kms_key_arns: KMS key ARNs."
  }
}

variable "failure_destination_arn" {
  description = "SQS queue or SNS topic receiving events of failed asynchronous invocations; null for none."
  type        = string
  default     = null

  validation {
    condition     = var.failure_destination_arn == null || can(regex("^arn:[a-z-]+:(sqs|sns):[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", var.failure_destination_arn))
    error_message = "failure_destination_arn: an SQS queue or SNS topic ARN."
  }
}

variable "failure_destination_kms_key_arn" {
  description = "Customer-managed KMS key of the failure destination, if it has one."
  type        = string
  default     = null
}

variable "subscribe_prefixes" {
  description = "Log group name prefixes the forwarder may subscribe on its own when they are created; empty disables it."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.subscribe_prefixes : can(regex("^[A-Za-z0-9_./#-]{1,512}$", p))])
    error_message = "subscribe_prefixes: log group name prefixes (letters, digits, _ - / . #)."
  }
}

variable "subscribe_role_arn" {
  description = "Role handed to CloudWatch Logs when the automatic subscriptions go to Firehose; null when they go to the forwarder."
  type        = string
  default     = null
}

variable "tracing" {
  description = "Whether the function sends X-Ray traces (active tracing)."
  type        = bool
  default     = true
}
