//! `tools/local_stack.py` provisions every template resource of a provisioned type into the
//! emulator, with the template's key schemas, indexes, FIFO settings and redrive policies.

use std::process::Command;

use integration_tests as h;
use serde_yaml::Value;

fn tag_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => t
            .value
            .as_str()
            .map(|s| s.split('.').next().unwrap_or(s).to_string()),
        _ => None,
    }
}

#[tokio::test]
async fn provisioning_creates_every_template_resource_as_declared() {
    let emulator = h::emulator();
    let stack = h::unique("stack");
    let out = std::env::temp_dir().join(&stack);
    let provision = || {
        Command::new(h::workspace_root().join(".venv/bin/python"))
            .arg(h::workspace_root().join("tools/local_stack.py"))
            .args([
                "provision",
                "--endpoint",
                &emulator.endpoint,
                "--stack",
                &stack,
                "--out",
            ])
            .arg(&out)
            .output()
            .expect("run local_stack.py")
    };
    let run = provision();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let physical = &summary["resources"];
    // Provisioning twice is fine.
    let again = provision();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );

    let config = h::sdk_config().await;
    let ddb = aws_sdk_dynamodb::Client::new(&config);
    let sqs = aws_sdk_sqs::Client::new(&config);
    let s3 = adapters::aws::s3_client(&config);
    let sns = aws_sdk_sns::Client::new(&config);
    let secrets = adapters::aws::secrets_client(&config);
    let template: Value = serde_yaml::from_str(
        &std::fs::read_to_string(h::workspace_root().join("template.yaml")).unwrap(),
    )
    .unwrap();
    let mut checked = 0;
    for (logical, resource) in template["Resources"].as_mapping().unwrap() {
        let logical = logical.as_str().unwrap();
        let props = &resource["Properties"];
        let name = physical[logical].as_str();
        match resource["Type"].as_str().unwrap() {
            "AWS::DynamoDB::Table" => {
                let table = ddb
                    .describe_table()
                    .table_name(name.unwrap())
                    .send()
                    .await
                    .unwrap();
                let table = table.table().unwrap();
                let keys: Vec<(String, String)> = table
                    .key_schema()
                    .iter()
                    .map(|k| {
                        (
                            k.attribute_name().to_string(),
                            k.key_type().as_str().to_string(),
                        )
                    })
                    .collect();
                let want: Vec<(String, String)> = props["KeySchema"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|k| {
                        (
                            k["AttributeName"].as_str().unwrap().to_string(),
                            k["KeyType"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
                assert_eq!(keys, want, "{logical} key schema");
                let indexes: Vec<&str> = table
                    .global_secondary_indexes()
                    .iter()
                    .filter_map(|g| g.index_name())
                    .collect();
                let want: Vec<&str> = props["GlobalSecondaryIndexes"]
                    .as_sequence()
                    .into_iter()
                    .flatten()
                    .map(|g| g["IndexName"].as_str().unwrap())
                    .collect();
                assert_eq!(indexes, want, "{logical} indexes");
                checked += 1;
            }
            "AWS::SQS::Queue" => {
                let url = name.unwrap_or_else(|| panic!("{logical} not provisioned"));
                let attrs = sqs
                    .get_queue_attributes()
                    .queue_url(url)
                    .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
                    .send()
                    .await
                    .unwrap();
                let attrs = attrs.attributes().unwrap();
                use aws_sdk_sqs::types::QueueAttributeName as A;
                let fifo = props["FifoQueue"].as_bool().unwrap_or(false);
                assert_eq!(
                    attrs.get(&A::FifoQueue).map(String::as_str) == Some("true"),
                    fifo,
                    "{logical} FIFO"
                );
                if let Some(v) = props["VisibilityTimeout"].as_u64() {
                    assert_eq!(
                        attrs[&A::VisibilityTimeout],
                        v.to_string(),
                        "{logical} visibility"
                    );
                }
                if let Some(redrive) = props["RedrivePolicy"].as_mapping() {
                    let policy: serde_json::Value =
                        serde_json::from_str(&attrs[&A::RedrivePolicy]).unwrap();
                    let dlq = tag_target(&redrive[&Value::from("deadLetterTargetArn")]).unwrap();
                    let dlq_url = physical[dlq.as_str()].as_str().unwrap();
                    assert!(policy["deadLetterTargetArn"]
                        .as_str()
                        .unwrap()
                        .ends_with(dlq_url.rsplit('/').next().unwrap()));
                    assert_eq!(
                        policy["maxReceiveCount"].to_string().trim_matches('"'),
                        redrive[&Value::from("maxReceiveCount")]
                            .as_u64()
                            .unwrap()
                            .to_string()
                    );
                }
                checked += 1;
            }
            "AWS::S3::Bucket" => {
                s3.head_bucket()
                    .bucket(name.unwrap())
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{logical}: {e:?}"));
                checked += 1;
            }
            "AWS::SNS::Topic" => {
                sns.get_topic_attributes()
                    .topic_arn(name.unwrap())
                    .send()
                    .await
                    .unwrap();
                checked += 1;
            }
            "AWS::SecretsManager::Secret" => {
                // A generated value, and the function that names it can read it.
                let arn = name.unwrap_or_else(|| panic!("{logical} not provisioned"));
                let key = adapters::secrets::read_secret(&secrets, arn).await.unwrap();
                assert!(key.len() >= 32, "{logical}: a generated key");
                assert_eq!(
                    summary["functions"]["user-api"]["PAGE_TOKEN_SECRET_ARN"], arn,
                    "user-api names {logical}"
                );
                checked += 1;
            }
            _ => {}
        }
    }
    assert_eq!(
        checked, 13,
        "buckets, tables, queues, topics and secrets of the template"
    );
    // Every function's settings are resolved for `cargo lambda watch`.
    let env = std::fs::read_to_string(out.join("env")).unwrap();
    for name in [
        "USERS_TABLE",
        "ORDERS_TABLE",
        "INVENTORY_TABLE",
        "PAYMENT_QUEUE_URL",
        "ORDER_EVENTS_TOPIC_ARN",
        "ORDERS_DLQ_URL",
        "DESTINATION_BUCKET",
        "SOURCE_BUCKET",
        "PAGE_TOKEN_SECRET_ARN",
        "AWS_ENDPOINT_URL",
    ] {
        assert!(
            env.lines()
                .any(|l| l.starts_with(&format!("{name}=")) && !l.ends_with("None")),
            "{name} in .local/env"
        );
    }
    let _ = std::fs::remove_dir_all(out);
}
