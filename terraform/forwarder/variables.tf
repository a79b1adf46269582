variable "name" {
  description = "Name of the function; the role, log group, queue and rule names derive from it."
  type        = string
  default     = "tracehose"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,37}[a-z0-9]$", var.name))
    error_message = "name: 2 to 39 characters, lowercase letters, digits and '-', starting with a letter."
  }
}

variable "package_path" {
  description = "Path of the function zip built by scripts/package.sh (a `bootstrap` executable at its root)."
  type        = string

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path: the .zip written by scripts/package.sh."
  }
}

variable "architecture" {
  description = "Instruction set of the package: x86_64 or arm64 (must match the zip)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.architecture)
    error_message = "architecture: x86_64 or arm64."
  }
}

variable "memory_size" {
  description = "Memory of the function in MB (CPU grows with it)."
  type        = number
  default     = 256

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size: 128 to 10240 MB."
  }
}

variable "timeout" {
  description = "Timeout in seconds. A Firehose transformation must answer within 5 minutes, so at most 300 for that use."
  type        = number
  default     = 60

  validation {
    condition     = var.timeout >= 3 && var.timeout <= 900
    error_message = "timeout: 3 to 900 seconds."
  }
}

variable "reserved_concurrency" {
  description = "Concurrent executions reserved for the forwarder, which also caps it so a log storm cannot starve other functions; -1 for unreserved."
  type        = number
  default     = 20

  validation {
    condition     = var.reserved_concurrency == -1 || var.reserved_concurrency >= 1
    error_message = "reserved_concurrency: -1 (unreserved) or at least 1."
  }
}

variable "log_retention_days" {
  description = "Retention of the forwarder's own log group, in days (a value CloudWatch Logs accepts)."
  type        = number
  default     = 30

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days: one of 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653."
  }
}

variable "kms_key_arn" {
  description = "Customer-managed KMS key for the function's environment, its log group and its failure queue; null for AWS-managed encryption. The key policy must let CloudWatch Logs use it."
  type        = string
  default     = null

  validation {
    condition     = var.kms_key_arn == null || can(regex("^arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/.+$", var.kms_key_arn))
    error_message = "kms_key_arn: a KMS key ARN."
  }
}

variable "environment" {
  description = "Configuration of the forwarder as environment variables: destinations (DT_CONNECTION_BASE_URL, OTEL_EXPORTER_OTLP_ENDPOINT, DD_SITE, ...) and TRACEHOSE_* settings. Secrets do not belong here: use secret_arns."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([for k in keys(var.environment) : !contains([
      "DT_LOG_COLLECTION_AUTH_TOKEN", "DT_CONNECTION_AUTH_TOKEN", "DD_API_KEY",
    ], k)])
    error_message = "environment: tokens and keys must not be plain environment variables; pass their secret ARNs in secret_arns."
  }

  validation {
    condition     = alltrue([for k in keys(var.environment) : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k))])
    error_message = "environment: variable names are letters, digits and '_', not starting with a digit."
  }
}

variable "secret_arns" {
  description = "Secrets the forwarder reads at start, as environment variable name (DT_CONNECTION_AUTH_TOKEN_SECRET_ARN, DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN, DD_API_KEY_SECRET_ARN, OTEL_EXPORTER_OTLP_HEADERS_SECRET_ARN, TRACEHOSE_ACCESS_KEYS_SECRET_ARN) to Secrets Manager ARN. The role can read exactly these secrets."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([for k in keys(var.secret_arns) : contains([
      "DT_CONNECTION_AUTH_TOKEN_SECRET_ARN", "DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN", "DD_API_KEY_SECRET_ARN",
      "OTEL_EXPORTER_OTLP_HEADERS_SECRET_ARN", "TRACEHOSE_ACCESS_KEYS_SECRET_ARN",
    ], k)])
    error_message = "secret_arns: each key is one the forwarder reads from Secrets Manager: DT_CONNECTION_AUTH_TOKEN_SECRET_ARN, DT_LOG_COLLECTION_AUTH_TOKEN_SECRET_ARN, DD_API_KEY_SECRET_ARN, OTEL_EXPORTER_OTLP_HEADERS_SECRET_ARN or TRACEHOSE_ACCESS_KEYS_SECRET_ARN."
  }

  validation {
    condition     = alltrue([for v in values(var.secret_arns) : can(regex("^arn:[a-z-]+:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[^*]+$", v))])
    error_message = "secret_arns: every value is a full Secrets Manager secret ARN, without wildcards."
  }
}

variable "secret_kms_key_arns" {
  description = "Customer-managed KMS keys that encrypt those secrets; empty when they use the AWS-managed key."
  type        = list(string)
  default     = []
}

variable "failure_destination_arn" {
  description = "SQS queue or SNS topic that receives direct-subscription events the forwarder failed on after Lambda's retries; null creates an encrypted SQS queue for them. Whether it is null decides what is created, so it must be known at plan time: for a queue or topic created in the same apply, build the ARN from its name rather than reading its arn attribute."
  type        = string
  default     = null

  validation {
    condition     = var.failure_destination_arn == null || can(regex("^arn:[a-z-]+:(sqs|sns):[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]+$", var.failure_destination_arn))
    error_message = "failure_destination_arn: an SQS queue or SNS topic ARN."
  }
}

variable "maximum_retry_attempts" {
  description = "Retries of a failed asynchronous invocation (direct subscription, EventBridge) before it goes to the failure destination."
  type        = number
  default     = 2

  validation {
    condition     = var.maximum_retry_attempts >= 0 && var.maximum_retry_attempts <= 2
    error_message = "maximum_retry_attempts: 0 to 2."
  }
}

variable "maximum_event_age_seconds" {
  description = "Age after which an asynchronous event is no longer retried but sent to the failure destination."
  type        = number
  default     = 21600

  validation {
    condition     = var.maximum_event_age_seconds >= 60 && var.maximum_event_age_seconds <= 21600
    error_message = "maximum_event_age_seconds: 60 to 21600."
  }
}

variable "allow_cloudwatch_logs" {
  description = "Let every log group of this account and region invoke the function, so subscription filters (Terraform, `tracehose subscribe`, automatic) can target it."
  type        = bool
  default     = true
}

variable "function_url" {
  description = "Create a function URL so the forwarder can serve as a Firehose HTTP endpoint. Firehose cannot sign requests, so the URL is public and the forwarder checks the Firehose access key itself: set its secret in secret_arns as TRACEHOSE_ACCESS_KEYS_SECRET_ARN (without it every request is refused)."
  type        = bool
  default     = false
}

variable "subscribe_prefixes" {
  description = "Log group name prefixes to subscribe automatically when such a log group is created (EventBridge rule on CloudTrail's CreateLogGroup; needs a CloudTrail trail recording management events). Empty disables it."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.subscribe_prefixes : can(regex("^[A-Za-z0-9_./#-]{1,512}$", p))])
    error_message = "subscribe_prefixes: log group name prefixes (letters, digits, _ - / . #)."
  }
}

variable "subscribe_destination_arn" {
  description = "Destination of the automatic subscriptions: null for this function, or a Firehose stream ARN (then set subscribe_role_arn)."
  type        = string
  default     = null

  validation {
    condition     = var.subscribe_destination_arn == null || can(regex("^arn:[a-z-]+:(lambda|firehose):", var.subscribe_destination_arn))
    error_message = "subscribe_destination_arn: a Lambda function or Firehose delivery stream ARN."
  }
}

variable "subscribe_role_arn" {
  description = "Role CloudWatch Logs assumes for a Firehose subscribe_destination_arn (the log-subscriptions module outputs it)."
  type        = string
  default     = null

  validation {
    condition     = var.subscribe_role_arn == null || can(regex("^arn:[a-z-]+:iam::[0-9]{12}:role/.+$", var.subscribe_role_arn))
    error_message = "subscribe_role_arn: an IAM role ARN."
  }
}

variable "subscribe_filter_pattern" {
  description = "Filter pattern of the automatic subscriptions; empty forwards every event."
  type        = string
  default     = ""
}

variable "tracing" {
  description = "Active X-Ray tracing of the forwarder itself."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
