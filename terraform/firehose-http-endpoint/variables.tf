variable "name" {
  description = "Base name: the stream is <name>-logs, and the role, bucket and log group names derive from it."
  type        = string
  default     = "tracehose"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,37}[a-z0-9]$", var.name))
    error_message = "name: 2 to 39 characters, lowercase letters, digits and '-', starting with a letter."
  }
}

variable "endpoint_url" {
  description = "HTTPS URL Firehose posts to: the forwarder's function URL (forwarder module output function_url), or a vendor intake such as https://<env>.live.dynatrace.com/api/v2/logs/ingest/aws_firehose."
  type        = string

  validation {
    condition     = can(regex("^https://[^/\\s]+(/\\S*)?$", var.endpoint_url))
    error_message = "endpoint_url: an https:// URL (Firehose delivers only over HTTPS)."
  }
}

variable "endpoint_name" {
  description = "Display name of the HTTP endpoint in the Firehose console."
  type        = string
  default     = "tracehose"

  validation {
    condition     = length(var.endpoint_name) >= 1 && length(var.endpoint_name) <= 256
    error_message = "endpoint_name: 1 to 256 characters."
  }
}

variable "access_key_secret_arn" {
  description = "Secrets Manager secret holding the endpoint's access key as JSON {\"api_key\": \"...\"}; Firehose sends it in X-Amz-Firehose-Access-Key. The key never enters Terraform state."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[^*]+$", var.access_key_secret_arn))
    error_message = "access_key_secret_arn: a full Secrets Manager secret ARN, without wildcards."
  }
}

variable "access_key_kms_key_arn" {
  description = "Customer-managed KMS key encrypting the access key secret; null for the AWS-managed key."
  type        = string
  default     = null
}

variable "buffering_size" {
  description = "MiB Firehose buffers before a delivery (1 to 64). Small keeps latency low; `tracehose serve` and Dynatrace accept up to 64. For a Lambda function URL endpoint (*.lambda-url.<region>.on.aws) the module uses at most 3, so that no request exceeds the URL's 6 MB limit (a 413 there is never backed up)."
  type        = number
  default     = 1

  validation {
    condition     = var.buffering_size >= 1 && var.buffering_size <= 64
    error_message = "buffering_size: 1 to 64 MiB."
  }
}

variable "buffering_interval" {
  description = "Seconds Firehose buffers before a delivery (0 to 900)."
  type        = number
  default     = 60

  validation {
    condition     = var.buffering_interval >= 0 && var.buffering_interval <= 900
    error_message = "buffering_interval: 0 to 900 seconds."
  }
}

variable "retry_duration" {
  description = "Seconds Firehose keeps retrying a failed delivery before backing the data up to S3 (0 to 7200)."
  type        = number
  default     = 900

  validation {
    condition     = var.retry_duration >= 0 && var.retry_duration <= 7200
    error_message = "retry_duration: 0 to 7200 seconds."
  }
}

variable "common_attributes" {
  description = "Attributes Firehose adds to every request (X-Amz-Firehose-Common-Attributes), at most 50; the forwarder adds them to every record."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(var.common_attributes) <= 50
    error_message = "common_attributes: at most 50 attributes."
  }
}

variable "transformation_function_arn" {
  description = "ARN of the forwarder function to run as Firehose data transformation before delivery; null for none."
  type        = string
  default     = null
}

variable "transformation_buffer_size" {
  description = "MiB of records per transformation invocation (0.2 to 3; Lambda's 6 MB response limit bounds it)."
  type        = number
  default     = 1

  validation {
    condition     = var.transformation_buffer_size >= 0.2 && var.transformation_buffer_size <= 3
    error_message = "transformation_buffer_size: 0.2 to 3 MiB."
  }
}

variable "transformation_buffer_interval" {
  description = "Seconds Firehose buffers records for one transformation invocation (60 to 900)."
  type        = number
  default     = 60

  validation {
    condition     = var.transformation_buffer_interval >= 60 && var.transformation_buffer_interval <= 900
    error_message = "transformation_buffer_interval: 60 to 900 seconds."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the stream, the backup bucket and the error log group; null for AWS-owned and S3-managed keys."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn: a KMS key ARN."
  }
}

variable "backup_expiration_days" {
  description = "Days failed-data backups are kept in S3 before the lifecycle rule deletes them; replay them with `tracehose replay` before then."
  type        = number
  default     = 30

  validation {
    condition     = var.backup_expiration_days >= 1
    error_message = "backup_expiration_days: at least 1."
  }
}

variable "backup_force_destroy" {
  description = "Let `terraform destroy` delete the backup bucket with its objects (for test stacks)."
  type        = bool
  default     = false
}

variable "error_log_retention_days" {
  description = "Retention of the delivery error log group, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.error_log_retention_days)
    error_message = "error_log_retention_days: a retention CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
