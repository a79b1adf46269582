variable "subscribe_prefixes" {
  description = "Log group name prefixes whose new log groups the forwarder subscribes."
  type        = list(string)

  validation {
    condition     = length(var.subscribe_prefixes) >= 1 && alltrue([for p in var.subscribe_prefixes : can(regex("^[A-Za-z0-9_./#-]{1,512}$", p))])
    error_message = "subscribe_prefixes: at least one log group name prefix (letters, digits, _ - / . #)."
  }
}
