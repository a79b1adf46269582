"""Every Firehose delivery stream keeps what it could not deliver: an S3 backup configuration.

tracehose's promise is that nothing is lost silently. Firehose retries a failing destination only for the retry
duration; without an S3 backup, the data is then dropped.
"""

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

# Destinations that are S3 themselves: the data is already in a bucket.
S3_DESTINATIONS = {"s3", "extended_s3"}

# Backup modes per destination that send every failed record to S3 ("Disabled" exists only for some).
DISABLED_MODES = {"Disabled"}


def _first(value):
    """Checkov wraps every attribute value in a list; unwrap one level."""
    if isinstance(value, list):
        return value[0] if value else None
    return value


class FirehoseHasS3Backup(BaseResourceCheck):
    def __init__(self):
        super().__init__(
            name="Ensure every Firehose delivery stream backs up undelivered data to S3",
            id="CKV_TRACEHOSE_1",
            categories=[CheckCategories.BACKUP_AND_RECOVERY],
            supported_resources=["aws_kinesis_firehose_delivery_stream"],
        )

    def scan_resource_conf(self, conf):
        destination = _first(conf.get("destination"))
        if destination in S3_DESTINATIONS:
            return CheckResult.PASSED
        if not isinstance(destination, str):
            return CheckResult.FAILED
        block = _first(conf.get(f"{destination}_configuration"))
        if not isinstance(block, dict):
            return CheckResult.FAILED
        s3 = _first(block.get("s3_configuration"))
        if not isinstance(s3, dict) or not _first(s3.get("bucket_arn")):
            return CheckResult.FAILED
        if _first(block.get("s3_backup_mode")) in DISABLED_MODES:
            return CheckResult.FAILED
        return CheckResult.PASSED


check = FirehoseHasS3Backup()
