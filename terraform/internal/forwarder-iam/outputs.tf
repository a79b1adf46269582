output "assume_role_policy" {
  description = "Trust policy of the forwarder's role: Lambda in this account only."
  value = jsonencode({
    Version = "2012-10-17"
    Statement = [{
      Effect    = "Allow"
      Principal = { Service = "lambda.amazonaws.com" }
      Action    = "sts:AssumeRole"
      Condition = { StringEquals = { "aws:SourceAccount" = var.account_id } }
    }]
  })
}

output "policy" {
  description = "Least-privilege permissions of the forwarder (JSON)."
  value = jsonencode({
    Version   = "2012-10-17"
    Statement = local.statements
  })
}

output "statement_ids" {
  description = "Sids of the statements in the policy, for tests and reviews."
  value       = [for s in local.statements : s.Sid]
}
