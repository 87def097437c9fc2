//! One DynamoDB `ListTables` through the suite's SDK configuration (`adapters::aws`), against the
//! endpoint `AWS_ENDPOINT_URL` names: prints `ok`, or the error with its causes, and exits 0 or 1.
//!
//! The SDK reads its TLS roots once per process, so `tests/suite/tls_roots.rs` runs this once per
//! root setting (`SSL_CERT_FILE` set or not).

use aws_smithy_types::error::display::DisplayErrorContext;
use settings::Env;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let settings = match adapters::config::AwsSettings::from_env(&Env::from_process()) {
        Ok(settings) => settings,
        Err(e) => {
            println!("configuration: {e}");
            std::process::exit(2);
        }
    };
    let sdk = adapters::aws::load_sdk_config(&settings).await;
    match adapters::aws::dynamodb_client(&sdk)
        .list_tables()
        .send()
        .await
    {
        Ok(_) => println!("ok"),
        Err(e) => {
            println!("{}", DisplayErrorContext(&e));
            std::process::exit(1);
        }
    }
}
