//! The AWS configuration every SDK client of the forwarder is built from.
//!
//! Region, credentials and `AWS_ENDPOINT_URL*` are picked as the AWS CLI would pick them. The HTTPS client is
//! chosen here rather than by the SDK's default feature: that default is rustls on aws-lc-rs, a second crypto
//! library next to the ring that reqwest already links, and with it the Lambda package outgrew its 5 MB budget.

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Builder;

/// Loads the configuration with an HTTPS client on rustls and ring. Each call loads it again and builds a new
/// client (with its own connection pool), so callers build their SDK clients from it once, at start.
pub async fn sdk_config() -> SdkConfig {
    let http_client = Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}
