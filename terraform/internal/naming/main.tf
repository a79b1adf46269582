locals {
  # S3 bucket names are global and at most 63 characters: account and region make them unique, and the
  # name is cut (never the suffix) so two deployments cannot collide by truncation.
  bucket_suffix = "-${var.account_id}-${var.region}"
  bucket_name   = "${substr(var.name, 0, 63 - length("-backup${local.bucket_suffix}"))}-backup${local.bucket_suffix}"
}
