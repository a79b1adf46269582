variable "name" {
  description = "Base name for the role and the account policy."
  type        = string
  default     = "tracehose"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,37}[a-z0-9]$", var.name))
    error_message = "name: 2 to 39 characters, lowercase letters, digits and '-', starting with a letter."
  }
}

variable "destination_arn" {
  description = "The forwarder function ARN (direct subscription; its module must keep allow_cloudwatch_logs on) or a Firehose delivery stream ARN (a role for CloudWatch Logs is created). It must be known at plan time, because it decides what is created: the forwarder module's function_arn and the firehose-http-endpoint module's delivery_stream_arn are; for a resource of your own, build the ARN from its name rather than reading its arn attribute."
  type        = string

  validation {
    condition     = can(regex("^arn:[a-z-]+:(lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+|firehose:[a-z0-9-]+:[0-9]{12}:deliverystream/[A-Za-z0-9_.-]+)$", var.destination_arn))
    error_message = "destination_arn: a Lambda function ARN or a Firehose delivery stream ARN."
  }
}

variable "log_group_names" {
  description = "Log groups to subscribe by name."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for g in var.log_group_names : can(regex("^[A-Za-z0-9_./#-]{1,512}$", g))])
    error_message = "log_group_names: log group names (letters, digits, _ - / . #)."
  }
}

variable "log_group_prefixes" {
  description = "Subscribe every log group existing at apply time whose name starts with one of these (for groups created later, use the forwarder's subscribe_prefixes or account_policy)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.log_group_prefixes : can(regex("^[A-Za-z0-9_./#-]{1,512}$", p))])
    error_message = "log_group_prefixes: log group name prefixes (letters, digits, _ - / . #)."
  }
}

variable "excluded_log_group_names" {
  description = "Log groups never subscribed: pass the forwarder's own (forwarder module output log_group_name) and the Firehose error log group. With a Lambda destination, /aws/lambda/<function> is excluded anyway."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for g in var.excluded_log_group_names : can(regex("^[A-Za-z0-9_./#-]{1,512}$", g))])
    error_message = "excluded_log_group_names: log group names (letters, digits, _ - / . #)."
  }
}

variable "filter_name" {
  description = "Name of the subscription filters; `tracehose subscribe` and the automatic subscription use \"tracehose\" too, so they update these filters rather than add new ones."
  type        = string
  default     = "tracehose"

  validation {
    condition     = length(var.filter_name) >= 1 && length(var.filter_name) <= 512 && !strcontains(var.filter_name, ":") && !strcontains(var.filter_name, "*")
    error_message = "filter_name: 1 to 512 characters, no ':' or '*'."
  }
}

variable "filter_pattern" {
  description = "CloudWatch Logs filter pattern; empty sends every event."
  type        = string
  default     = ""

  validation {
    condition     = length(var.filter_pattern) <= 1024
    error_message = "filter_pattern: at most 1024 characters."
  }
}

variable "account_policy" {
  description = "Also create an account-level subscription filter policy that subscribes every log group of the account and region, existing and future, except the excluded ones (the forwarder's own always among them)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
