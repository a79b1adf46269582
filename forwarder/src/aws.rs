//! The AWS configuration every SDK client of the forwarder is built from.
//!
//! Region, credentials and `AWS_ENDPOINT_URL*` are picked as the AWS CLI would pick them. The HTTPS client is
//! chosen here rather than by the SDK's default feature: that default is rustls on aws-lc-rs, a second crypto
//! library next to the ring that reqwest already links, and with it the Lambda package outgrew its 5 MB budget.

use std::sync::Arc;

use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_http_client::Builder;
use thiserror::Error;
use tokio::sync::OnceCell;

/// Every call would fail without a region, so the clients that need one refuse to start instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("no AWS region configured: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile with a region)")]
pub struct NoRegion;

/// The AWS configuration of one face (the Lambda function, one command), loaded at its first use and shared
/// by every SDK client the face builds. Lazy, because most runs need none (no secret, no subscription, no
/// replay); shared, because a Lambda cold start may need it three times (secrets, subscriber, replay hook).
/// Not a process-wide static: the HTTPS client's pool belongs to the tokio runtime that first used it, and
/// the CLI starts one runtime per face. Clones share the same configuration.
#[derive(Debug, Clone, Default)]
pub struct Aws {
    config: Arc<OnceCell<SdkConfig>>,
}

impl Aws {
    /// A configuration made by the test, used as it is.
    #[cfg(test)]
    pub(crate) fn from_config(config: SdkConfig) -> Self {
        Self {
            config: Arc::new(OnceCell::new_with(Some(config))),
        }
    }

    /// The configuration, loaded on the first call.
    pub async fn config(&self) -> &SdkConfig {
        self.config.get_or_init(load).await
    }

    /// The configuration, or [`NoRegion`] when it names no region.
    pub async fn regional(&self) -> Result<&SdkConfig, NoRegion> {
        let config = self.config().await;
        config.region().map(|_| config).ok_or(NoRegion)
    }
}

/// Loads the configuration with an HTTPS client on rustls and ring.
async fn load() -> SdkConfig {
    let http_client = Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client)
        .load()
        .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use aws_config::Region;

    use super::*;

    #[tokio::test]
    async fn a_configuration_without_a_region_is_refused_by_name() {
        let aws = Aws::from_config(SdkConfig::builder().build());
        assert_eq!(aws.regional().await.unwrap_err(), NoRegion);
        assert!(NoRegion.to_string().contains("AWS_REGION"));
    }

    #[tokio::test]
    async fn clones_share_one_configuration() {
        let aws = Aws::from_config(SdkConfig::builder().region(Region::new("eu-west-1")).build());
        let clone = aws.clone();
        let (a, b) = (aws.regional().await.unwrap(), clone.config().await);
        assert!(std::ptr::eq(a, b));
        assert_eq!(b.region().map(Region::as_ref), Some("eu-west-1"));
    }
}
