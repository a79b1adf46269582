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
  description = "Region of the delivery stream."
  type        = string
}

variable "account_id" {
  description = "Account of the delivery stream; the trust policy accepts Firehose only on behalf of it."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.account_id))
    error_message = "account_id: 12 digits."
  }
}

variable "backup_bucket_arn" {
  description = "ARN of the bucket receiving the data Firehose could not deliver."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:s3:::[a-z0-9.-]{3,63}$", var.backup_bucket_arn))
    error_message = "backup_bucket_arn: an S3 bucket ARN (arn:aws:s3:::name)."
  }
}

variable "backup_kms_key_arn" {
  description = "Customer-managed KMS key of the backup bucket; null when it uses S3-managed keys."
  type        = string
  default     = null
}

variable "error_log_group_name" {
  description = "Log group Firehose writes delivery errors to."
  type        = string
}

variable "access_key_secret_arn" {
  description = "Secrets Manager secret holding the endpoint's access key; null when none is read from Secrets Manager."
  type        = string
  default     = null

  validation {
    condition     = var.access_key_secret_arn == null || can(regex("^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[^*]+$", var.access_key_secret_arn))
    error_message = "access_key_secret_arn: a full Secrets Manager secret ARN (no wildcards)."
  }
}

variable "access_key_kms_key_arn" {
  description = "Customer-managed KMS key encrypting the access key secret, if any."
  type        = string
  default     = null
}

variable "transformation_function_arn" {
  description = "Lambda function (the forwarder) Firehose calls to transform records; null for no transformation."
  type        = string
  default     = null

  validation {
    condition     = var.transformation_function_arn == null || can(regex("^arn:[a-z-]+:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9_$-]+)?$", var.transformation_function_arn))
    error_message = "transformation_function_arn: a Lambda function ARN."
  }
}
