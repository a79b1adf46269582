output "assume_role_policy" {
  description = "Trust policy: Firehose, for delivery streams of this account only (the external id Firehose sends is the account id)."
  value = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "firehose.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "sts:ExternalId" = var.account_id } }
    }]
  })
}

output "policy" {
  description = "Least-privilege permissions of the delivery stream's role (JSON)."
  value = jsonencode({
    Version   = "2012-10-17"
    Statement = local.statements
  })
}

output "statement_ids" {
  description = "Sids of the statements in the policy, for tests and reviews."
  value       = [for s in local.statements : s.Sid]
}
