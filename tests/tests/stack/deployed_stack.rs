//! template.yaml deployed by `sam deploy` into the emulator (`tools/local_stack.py deploy`, as the
//! demo, `make local-up` and `make deploy-local` do): the stack is created, deploying again changes
//! nothing, a parameter change updates it through a change set. What CloudFormation created is
//! checked against the template (key schemas, indexes, FIFO, redrive, generated secret), each
//! function's deployed environment may name only resources of the stack, and the resource types
//! the emulator leaves out are exactly the known ones, so that a new gap cannot hide.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use integration_tests as h;
use serde_json::Value as Json;
use serde_yaml::Value;

/// What moto 5.2's CloudFormation cannot create (docs/deploy.md, "What the emulator leaves out", says what each one means).
const LEFT_OUT_BY_THE_EMULATOR: &[&str] = &[
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
    "AWS::CloudFront::CachePolicy",
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::Function",
    "AWS::CloudFront::OriginAccessControl",
    "AWS::CloudFront::ResponseHeadersPolicy",
    "AWS::CodeDeploy::Application",
    "AWS::CodeDeploy::DeploymentGroup",
    "AWS::Cognito::UserPool",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolGroup",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
];

fn tag_target(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => t
            .value
            .as_str()
            .map(|s| s.split('.').next().unwrap_or(s).to_string()),
        _ => None,
    }
}

fn deploy(endpoint: &str, stack: &str, out: &Path, set: &[&str]) -> Json {
    let mut command = Command::new(h::workspace_root().join(".venv/bin/python"));
    command
        .arg(h::workspace_root().join("tools/local_stack.py"))
        .args(["deploy", "--endpoint", endpoint, "--stack", stack, "--out"])
        .arg(out);
    for parameter in set {
        command.args(["--set", parameter]);
    }
    let run = command.output().expect("run local_stack.py");
    assert!(
        run.status.success(),
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&run.stdout).expect("the deployed stack, as JSON")
}

/// Environment variables that name a resource (`*_TABLE`, `*_BUCKET`, `*_URL`, `*_ARN`) whose
/// value is not the physical id of one of the stack's resources.
fn names_outside_the_stack(functions: &Json, physical: &Json) -> Vec<String> {
    let mut ids: BTreeSet<String> = physical
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(_, v)| v.as_str().map(str::to_string))
        .collect();
    // A queue's physical id is its URL (`.../<account>/<name>`); a function may name it by ARN.
    let queue_arns: Vec<String> = ids
        .iter()
        .filter_map(|id| {
            let mut parts = id.rsplit('/');
            let (name, account) = (parts.next()?, parts.next()?);
            (id.starts_with("http")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit()))
            .then(|| format!("arn:aws:sqs:us-east-1:{account}:{name}"))
        })
        .collect();
    ids.extend(queue_arns);
    let mut outside = Vec::new();
    for (function, env) in functions.as_object().into_iter().flatten() {
        for (name, value) in env.as_object().into_iter().flatten() {
            let names_a_resource = ["_TABLE", "_BUCKET", "_URL", "_ARN"]
                .iter()
                .any(|suffix| name.ends_with(suffix));
            let value = value.as_str().unwrap_or_default();
            if names_a_resource && !ids.contains(value) {
                outside.push(format!("{function}: {name}={value}"));
            }
        }
    }
    outside
}

#[tokio::test]
async fn sam_deploy_creates_the_stack_then_changes_nothing_then_updates_a_parameter() {
    let emulator = h::emulator();
    let stack = h::unique("stack");
    let out = std::env::temp_dir().join(&stack);
    let summary = deploy(&emulator.endpoint, &stack, &out, &[]);
    assert_eq!(summary["status"], "CREATE_COMPLETE");
    assert_eq!(summary["changed"], true);
    let again = deploy(&emulator.endpoint, &stack, &out, &[]);
    assert_eq!(again["changed"], false, "a second deploy is a no-op");
    assert_eq!(again["status"], "CREATE_COMPLETE");
    let updated = deploy(&emulator.endpoint, &stack, &out, &["JpegQuality=77"]);
    assert_eq!(updated["status"], "UPDATE_COMPLETE");
    assert_eq!(
        updated["functions"]["image-compressor"]["JPEG_QUALITY"],
        "77"
    );
    assert_eq!(
        updated["functions"]["image-compressor"]["DESTINATION_BUCKET"],
        summary["functions"]["image-compressor"]["DESTINATION_BUCKET"],
        "an update keeps the resources"
    );

    let skipped: Vec<&str> = summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert_eq!(
        skipped, LEFT_OUT_BY_THE_EMULATOR,
        "the resource types the emulator leaves out changed: update docs/deploy.md and this list"
    );
    // An output reading an attribute of a left-out resource would fail the emulator's stack.
    assert_eq!(
        summary["outputs_left_out"],
        serde_json::json!(["VariantsDomainName"]),
        "outputs left out of the local stack changed: update docs/deploy.md and this list"
    );
    let outside = names_outside_the_stack(&summary["functions"], &summary["resources"]);
    assert!(
        outside.is_empty(),
        "names no resource of the stack: {outside:?}"
    );
    // The outputs resolve to the same resources the functions name.
    assert_eq!(
        summary["outputs"]["OrdersTableName"],
        summary["functions"]["order-processor"]["ORDERS_TABLE"]
    );
    assert_eq!(
        summary["outputs"]["SourceBucketName"],
        summary["functions"]["image-compressor"]["SOURCE_BUCKET"]
    );

    let physical = &summary["resources"];
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
                let url = name.unwrap_or_else(|| panic!("{logical} not created"));
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
                let arn = name.unwrap_or_else(|| panic!("{logical} not created"));
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
        checked, 17,
        "buckets, tables, queues, topics and secrets of the template"
    );
    // The queue feeds the `live` alias CloudFormation created, not the bare function.
    let mappings: Vec<(&str, &str)> = summary["event_source_mappings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["EventSourceArn"].as_str().unwrap(),
                m["FunctionArn"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(mappings.len(), 3, "{mappings:?}");
    // Each queue feeds the `live` alias of its function.
    for (queue, function) in [
        ("OrdersQueue", "OrderProcessorFunction"),
        ("PaymentResultsQueue", "OrderSettlementFunction"),
        ("ExpiryQueue", "OrderSettlementFunction"),
    ] {
        let queue = physical[queue].as_str().unwrap();
        let alias = &summary["aliases"][format!("{function}Aliaslive")];
        let alias_arn = alias["AliasArn"].as_str().unwrap();
        // The emulator records a mapping made to an alias under the version the alias names.
        let its_version = format!(
            "{}:{}",
            alias_arn.trim_end_matches(":live"),
            alias["FunctionVersion"].as_str().unwrap()
        );
        let source = format!(
            "arn:aws:sqs:us-east-1:123456789012:{}",
            queue.rsplit('/').next().unwrap()
        );
        let targets: Vec<&str> = mappings
            .iter()
            .filter(|(s, _)| *s == source)
            .map(|(_, t)| *t)
            .collect();
        assert_eq!(targets.len(), 1, "{source}: {mappings:?}");
        assert!(
            targets[0] == alias_arn || targets[0] == its_version,
            "{source} feeds {}, not the live alias {alias_arn}",
            targets[0]
        );
    }
    for logical in [
        "ImageCompressorFunction",
        "UserApiFunction",
        "OrderProcessorFunction",
        "OrderSettlementFunction",
    ] {
        let function = physical[logical].as_str().unwrap();
        assert_eq!(
            physical[format!("{logical}Aliaslive")],
            format!("arn:aws:lambda:us-east-1:123456789012:function:{function}:live"),
            "{logical} has a live alias"
        );
    }
    // Every function's settings are resolved for `cargo lambda watch`.
    let env = std::fs::read_to_string(out.join("env")).unwrap();
    for name in [
        "USERS_TABLE",
        "ORDERS_TABLE",
        "INVENTORY_TABLE",
        "PAYMENT_QUEUE_URL",
        "ORDER_EVENTS_TOPIC_ARN",
        "ORDERS_DLQ_URL",
        "EXPIRY_QUEUE_URL",
        "PAYMENT_RESULTS_QUEUE_ARN",
        "EXPIRY_QUEUE_ARN",
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
