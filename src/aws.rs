//! Fleet mode's link to AWS (SPEC §10, cargo feature `aws`): one SDK configuration for S3 and
//! DynamoDB, from the standard credential chain and region chain (environment, profile, SSO, web
//! identity, container and instance metadata) and `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_S3` /
//! `AWS_ENDPOINT_URL_DYNAMODB`, as every AWS SDK reads them. HTTPS goes through rustls with ring.
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};

/// Loads the shared SDK configuration (reads the environment and profile files; may call the
/// instance metadata service for credentials lazily, on the first request).
pub async fn sdk_config() -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
    aws_config::defaults(BehaviorVersion::latest()).http_client(http).load().await
}
