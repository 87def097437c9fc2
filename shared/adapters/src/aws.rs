//! Building SDK configuration and clients once per cold start, with explicit timeouts and retries.

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
use aws_smithy_http_client::ConnectorBuilder;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_runtime_api::shared::IntoShared;
use aws_smithy_types::config_bag::ConfigBag;

use crate::aws_call_spans::CallSpans;
use crate::config::AwsSettings;

/// Loads region, credentials and endpoint overrides (`AWS_ENDPOINT_URL`, per-service variants) from the
/// environment, then applies our timeouts and retry policy.
///
/// Lambda puts the region and the execution role's credentials in the environment, where the SDK's
/// default chains look first. When they are there, they are taken from there directly, without
/// building the rest of either chain (profile files, web identity with its STS client, container and
/// instance metadata clients), which a cold start would build and never use.
pub async fn load_sdk_config(settings: &AwsSettings) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(timeouts(settings))
        .retry_config(RetryConfig::standard().with_max_attempts(settings.max_attempts));
    if let Some(region) = environment_region() {
        loader = loader.region(aws_config::Region::new(region));
    }
    if credentials_in_environment() {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    loader.load().await
}

fn set(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The region the default chain would take from the environment first.
fn environment_region() -> Option<String> {
    set("AWS_REGION").or_else(|| set("AWS_DEFAULT_REGION"))
}

/// Whether the default credentials chain would take its credentials from the environment.
fn credentials_in_environment() -> bool {
    set("AWS_ACCESS_KEY_ID").is_some() && set("AWS_SECRET_ACCESS_KEY").is_some()
}

/// The one HTTPS client every SDK client of the process shares (the SDK's default client: hyper,
/// rustls, proxy settings from the environment), so they share its connection pool and build one
/// connector per timeout setting instead of one each. Its cryptography is ring's (`tls_crypto`).
///
/// The SDK checks its HTTP client once per client it builds, and the default client answers each
/// check by building a TLS connector and throwing it away, only so that the platform's root
/// certificates are read from disk before the first request: five times at a cold start here (the
/// credentials chain's STS client and four service clients), each parsing every root into a trust
/// anchor again. The roots come from `rustls-native-certs`, which the workspace replaces with
/// `shared/tls-roots`: Mozilla's roots compiled in, nothing to read. So this client skips that
/// warm-up (`NoWarmUp`): the first request builds the one connector it uses, parsing the roots once.
/// With `SSL_CERT_FILE` / `SSL_CERT_DIR` set, that first request also reads the files they name.
pub fn https_client() -> SharedHttpClient {
    let hyper = aws_smithy_http_client::Builder::new().build_with_connector_fn(
        |settings: Option<&HttpConnectorSettings>, components: Option<&RuntimeComponents>| {
            let mut connector =
                ConnectorBuilder::default().tls_provider(Provider::Rustls(tls_crypto()));
            connector.set_connector_settings(settings.cloned());
            if let Some(components) = components {
                connector.set_sleep_impl(components.sleep_impl());
            }
            connector.set_proxy_config(Some(ProxyConfig::from_env()));
            connector.build()
        },
    );
    NoWarmUp(hyper).into_shared()
}

/// The cryptography under rustls: ring, unless the `aws-lc` feature asks for aws-lc.
///
/// The SDK's own default is aws-lc, which also offers hybrid post-quantum key agreement
/// (X25519MLKEM768). ring offers X25519, P-256 and P-384 and the same cipher suites (the SDK keeps
/// AES-GCM and ChaCha20-Poly1305 either way), and is about a fifth of aws-lc's size in a bootstrap:
/// about 0.65 MB less per zipped function (docs/performance.md, "TLS").
#[cfg(not(feature = "aws-lc"))]
fn tls_crypto() -> CryptoMode {
    CryptoMode::Ring
}

#[cfg(feature = "aws-lc")]
fn tls_crypto() -> CryptoMode {
    CryptoMode::AwsLc
}

/// An HTTP client without the configuration check the SDK runs for each client it builds. The
/// hyper client's check always succeeds: all it does is build a connector to throw away.
#[derive(Debug)]
struct NoWarmUp(SharedHttpClient);

impl HttpClient for NoWarmUp {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        _: &RuntimeComponentsBuilder,
        _: &ConfigBag,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// What sending to (or receiving from) a KMS-encrypted queue or topic needs on its key.
pub const KMS_ENCRYPTED_TARGET_ACTIONS: &[&str] = &["kms:GenerateDataKey", "kms:Decrypt"];

pub fn timeouts(settings: &AwsSettings) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(settings.connect_timeout)
        .read_timeout(settings.attempt_timeout)
        .operation_attempt_timeout(settings.attempt_timeout)
        .operation_timeout(settings.operation_timeout)
        .build()
}

// Every client carries the `CallSpans` interceptor: one span per AWS call.

/// S3 client; path-style addressing when an endpoint override (a local emulator) is in use.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let local = config.endpoint_url().is_some();
    let s3 = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(local)
        .interceptor(CallSpans)
        .build();
    aws_sdk_s3::Client::from_conf(s3)
}

pub fn dynamodb_client(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(config)
            .interceptor(CallSpans)
            .build(),
    )
}

pub fn sqs_client(config: &SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::from_conf(
        aws_sdk_sqs::config::Builder::from(config)
            .interceptor(CallSpans)
            .build(),
    )
}

pub fn sns_client(config: &SdkConfig) -> aws_sdk_sns::Client {
    aws_sdk_sns::Client::from_conf(
        aws_sdk_sns::config::Builder::from(config)
            .interceptor(CallSpans)
            .build(),
    )
}

pub fn secrets_client(config: &SdkConfig) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(config)
            .interceptor(CallSpans)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Counts configuration checks; never asked for a connector (no request is sent).
    #[derive(Debug, Default)]
    struct CountingClient {
        checks: Arc<AtomicUsize>,
    }

    impl HttpClient for CountingClient {
        fn http_connector(
            &self,
            _: &HttpConnectorSettings,
            _: &RuntimeComponents,
        ) -> SharedHttpConnector {
            unreachable!("no request is sent in this test")
        }

        fn validate_base_client_config(
            &self,
            _: &RuntimeComponentsBuilder,
            _: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.checks.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn settings() -> AwsSettings {
        AwsSettings::from_env(&settings::Env::from_pairs(&[])).unwrap()
    }

    fn sdk_config(http: SharedHttpClient) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .http_client(http)
            .timeout_config(timeouts(&settings()))
            .build()
    }

    #[test]
    fn no_sdk_client_built_warms_the_http_client_up() {
        let counting = CountingClient::default();
        let checks = counting.checks.clone();
        let config = sdk_config(NoWarmUp(counting.into_shared()).into_shared());
        let _ = (
            dynamodb_client(&config),
            sqs_client(&config),
            sns_client(&config),
            s3_client(&config),
        );
        assert_eq!(checks.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn without_it_each_sdk_client_checks_again() {
        // What the wrapper saves: the SDK checks its HTTP client once per client it builds.
        let counting = CountingClient::default();
        let checks = counting.checks.clone();
        let config = sdk_config(counting.into_shared());
        let _ = (dynamodb_client(&config), sqs_client(&config));
        assert_eq!(checks.load(Ordering::SeqCst), 2);
    }
}
