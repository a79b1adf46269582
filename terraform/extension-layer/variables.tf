variable "name" {
  description = "Base name; the layer is <name>-extension."
  type        = string
  default     = "tracehose"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,37}[a-z0-9]$", var.name))
    error_message = "name: 2 to 39 characters, lowercase letters, digits and '-', starting with a letter."
  }
}

variable "package_path" {
  description = "Path of the layer zip built by scripts/package.sh (extensions/tracehose-extension inside)."
  type        = string

  validation {
    condition     = endswith(var.package_path, ".zip")
    error_message = "package_path: the .zip written by scripts/package.sh."
  }
}

variable "architectures" {
  description = "Instruction sets the layer's binary runs on: [\"x86_64\"] or [\"arm64\"], matching the zip."
  type        = list(string)
  default     = ["x86_64"]

  validation {
    condition     = length(var.architectures) >= 1 && alltrue([for a in var.architectures : contains(["x86_64", "arm64"], a)])
    error_message = "architectures: x86_64 and/or arm64."
  }
}

variable "compatible_runtimes" {
  description = "Runtimes the layer is listed for. scripts/package.sh links the extension against the oldest glibc among the defaults (2.26, Amazon Linux 2) and checks that each default can load it; a runtime you add is not checked."
  type        = list(string)
  default     = ["provided.al2023", "provided.al2", "python3.13", "python3.12", "nodejs22.x", "nodejs20.x", "java21", "java17", "dotnet8", "ruby3.3"]

  validation {
    condition     = length(var.compatible_runtimes) >= 1 && length(var.compatible_runtimes) <= 15
    error_message = "compatible_runtimes: 1 to 15 runtimes (a Lambda limit)."
  }
}

variable "license_info" {
  description = "License shown with the layer."
  type        = string
  default     = "Apache-2.0"
}

variable "principals" {
  description = "AWS account ids (or \"*\") allowed to use the layer besides this account; empty keeps it private."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for p in var.principals : p == "*" || can(regex("^[0-9]{12}$", p))])
    error_message = "principals: 12-digit account ids or \"*\"."
  }
}
