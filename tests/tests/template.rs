//! template.yaml and the code agree: binaries, environment variables, IAM actions, dead-letter
//! queues and their alarms.

use std::collections::{BTreeMap, BTreeSet};

use adapters::Env;
use integration_tests::workspace_root;
use serde_yaml::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// `!Ref X`, `!GetAtt X.Attr` → ("Ref"/"GetAtt", "X..."), for tagged CloudFormation values.
fn tag(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            t.value.as_str().unwrap_or_default().to_string(),
        )),
        _ => None,
    }
}

fn resources(t: &Value) -> &serde_yaml::Mapping {
    t["Resources"].as_mapping().unwrap()
}

struct Function {
    id: String,
    binary: String,
    env: BTreeMap<String, Value>,
    actions: BTreeSet<String>,
    props: Value,
}

/// What SAM's policy templates grant (from the SAM policy template definitions).
fn sam_policy_actions(name: &str) -> &'static [&'static str] {
    match name {
        "DynamoDBCrudPolicy" => &[
            "dynamodb:GetItem",
            "dynamodb:DeleteItem",
            "dynamodb:PutItem",
            "dynamodb:Scan",
            "dynamodb:Query",
            "dynamodb:UpdateItem",
            "dynamodb:BatchWriteItem",
            "dynamodb:BatchGetItem",
            "dynamodb:DescribeTable",
            "dynamodb:ConditionCheckItem",
        ],
        "S3ReadPolicy" => &[
            "s3:GetObject",
            "s3:ListBucket",
            "s3:GetBucketLocation",
            "s3:GetObjectVersion",
            "s3:GetLifecycleConfiguration",
        ],
        "SQSSendMessagePolicy" => &["sqs:SendMessage", "sqs:SendMessageBatch"],
        "SNSPublishMessagePolicy" => &["sns:Publish"],
        "KMSDecryptPolicy" => &["kms:Decrypt"],
        other => panic!("policy template {other} is not in the test's table"),
    }
}

fn functions(t: &Value) -> Vec<Function> {
    let globals: BTreeMap<String, Value> = t["Globals"]["Function"]["Environment"]["Variables"]
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.as_str().unwrap().to_string(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let mut out = Vec::new();
    for (id, r) in resources(t) {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let props = r["Properties"].clone();
        let mut env = globals.clone();
        if let Some(vars) = props["Environment"]["Variables"].as_mapping() {
            for (k, v) in vars {
                env.insert(k.as_str().unwrap().to_string(), v.clone());
            }
        }
        let mut actions = BTreeSet::new();
        for policy in props["Policies"].as_sequence().into_iter().flatten() {
            for (name, body) in policy.as_mapping().unwrap() {
                let name = name.as_str().unwrap();
                if name == "Statement" {
                    for statement in body.as_sequence().unwrap() {
                        assert_ne!(
                            statement["Resource"].as_str(),
                            Some("*"),
                            "{id:?}: no * resources"
                        );
                        match &statement["Action"] {
                            Value::String(a) => {
                                actions.insert(a.clone());
                            }
                            Value::Sequence(list) => {
                                actions.extend(list.iter().map(|a| a.as_str().unwrap().to_string()))
                            }
                            other => panic!("unexpected Action {other:?}"),
                        }
                    }
                } else {
                    actions.extend(sam_policy_actions(name).iter().map(|a| a.to_string()));
                }
            }
        }
        out.push(Function {
            id: id.as_str().unwrap().to_string(),
            binary: r["Metadata"]["BuildProperties"]["Binary"]
                .as_str()
                .unwrap()
                .to_string(),
            env,
            actions,
            props,
        });
    }
    out
}

/// A value for an environment variable as the deployed function would see it: parameter defaults,
/// literals, and plausible stand-ins for resource references.
fn resolve(t: &Value, name: &str, v: &Value) -> String {
    // Tags first: serde_yaml's `as_str` looks through `!Ref X` and would return "X".
    match tag(v) {
        Some((kind, target)) if kind == "Ref" => {
            let default = &t["Parameters"][target.as_str()]["Default"];
            if let Some(s) = default.as_str() {
                return s.to_string();
            }
            if let Some(n) = default.as_u64() {
                return n.to_string();
            }
        }
        Some(_) => {}
        None => {
            if let Some(s) = v.as_str() {
                return s.to_string();
            }
            if let Some(n) = v.as_u64() {
                return n.to_string();
            }
        }
    }
    match name {
        n if n.ends_with("_URL") => format!(
            "https://sqs.us-east-1.amazonaws.com/123456789012/{}",
            n.to_lowercase()
        ),
        n if n.ends_with("_ARN") => {
            format!("arn:aws:sns:us-east-1:123456789012:{}", n.to_lowercase())
        }
        n if n.contains("ORIGINS") => "https://app.example.com".into(),
        n => format!("stack-{}", n.to_lowercase().replace('_', "-")),
    }
}

/// Reads the function's configuration the way its `main` does; returns the names it looked up.
fn names_read_by(binary: &str, env: &Env) -> Vec<String> {
    match binary {
        "image-compressor" => image_compressor::config::Config::from_env(env)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "user-api" => user_api::config::Config::from_env(env)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        "order-processor" => order_processor::config::Config::from_env(env)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        other => panic!("no configuration known for {other}"),
    }
    .unwrap_or_else(|e| panic!("{binary} does not start with the template's environment: {e}"));
    env.names_read()
}

/// Read by the code with a documented default, deliberately not set by the template.
const OPTIONAL: [&str; 5] = [
    "CACHE_CONTROL",
    "BACKGROUND_COLOR",
    "MAX_DECODE_BYTES",
    "PAGE_TOKEN_SECRET",
    "PAYMENT_SEND_WINDOW_SECS",
];

#[test]
fn every_function_binary_exists_in_the_workspace() {
    let t = template();
    let fns = functions(&t);
    assert_eq!(fns.len(), 3);
    for f in fns {
        let manifest = workspace_root()
            .join("functions")
            .join(&f.binary)
            .join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest)
            .unwrap_or_else(|_| panic!("{}: no crate for {}", f.id, f.binary));
        assert!(
            text.contains("[[bin]]") && text.contains(&format!("name = \"{}\"", f.binary)),
            "{}",
            f.id
        );
        assert_eq!(
            t["Resources"][f.id.as_str()]["Metadata"]["BuildMethod"].as_str(),
            Some("rust-cargolambda")
        );
    }
}

#[test]
fn environment_variables_match_what_the_code_reads() {
    let t = template();
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    for f in functions(&t) {
        let values: Vec<(String, String)> = f
            .env
            .iter()
            .map(|(k, v)| (k.clone(), resolve(&t, k, v)))
            .collect();
        let pairs: Vec<(&str, &str)> = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let read: BTreeSet<String> = names_read_by(&f.binary, &Env::from_pairs(&pairs))
            .into_iter()
            .collect();
        let set: BTreeSet<String> = f.env.keys().cloned().collect();
        let unused: Vec<_> = set.difference(&read).collect();
        assert!(
            unused.is_empty(),
            "{}: the template sets variables the code never reads: {unused:?}",
            f.id
        );
        let unset: Vec<_> = read
            .difference(&set)
            .filter(|n| !OPTIONAL.contains(&n.as_str()))
            .collect();
        assert!(
            unset.is_empty(),
            "{}: the code reads variables the template does not set: {unset:?}",
            f.id
        );
        for name in &read {
            assert!(
                readme.contains(&format!("`{name}`")),
                "{name} is not documented in README.md"
            );
        }
    }
}

#[test]
fn every_sdk_action_is_allowed_by_the_function_policy() {
    let t = template();
    let adapters_of = |binary: &str| -> Vec<&'static [&'static str]> {
        match binary {
            "image-compressor" => vec![adapters::s3::S3_OBJECT_STORE_ACTIONS],
            "user-api" => vec![adapters::dynamo_users::DYNAMO_USER_STORE_ACTIONS],
            "order-processor" => vec![
                adapters::dynamo_orders::DYNAMO_ORDER_STORE_ACTIONS,
                adapters::sqs::SQS_SEND_ACTIONS,
                adapters::sns::SNS_PUBLISH_ACTIONS,
            ],
            other => panic!("no adapter table for {other}"),
        }
    };
    for f in functions(&t) {
        for actions in adapters_of(&f.binary) {
            for action in actions.iter() {
                assert!(
                    f.actions.contains(*action),
                    "{}: policy lacks {action} (has {:?})",
                    f.id,
                    f.actions
                );
            }
        }
    }
}

fn alarm_on_queue(t: &Value, queue: &str) -> bool {
    resources(t).values().any(|r| {
        r["Type"].as_str() == Some("AWS::CloudWatch::Alarm")
            && r["Properties"]["MetricName"].as_str() == Some("ApproximateNumberOfMessagesVisible")
            && r["Properties"]["Dimensions"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|d| {
                    tag(&d["Value"]).is_some_and(|(kind, target)| {
                        kind == "GetAtt" && target == format!("{queue}.QueueName")
                    })
                })
    })
}

fn alarm_on_function(t: &Value, function: &str, metric: &str) -> bool {
    resources(t).values().any(|r| {
        r["Properties"]["MetricName"].as_str() == Some(metric)
            && r["Properties"]["Dimensions"]
                .as_sequence()
                .into_iter()
                .flatten()
                .any(|d| {
                    tag(&d["Value"])
                        .is_some_and(|(kind, target)| kind == "Ref" && target == function)
                })
    })
}

#[test]
fn async_and_queue_fed_functions_have_a_dead_letter_queue_with_an_alarm() {
    let t = template();
    for f in functions(&t) {
        for metric in ["Errors", "Throttles", "Duration"] {
            assert!(
                alarm_on_function(&t, &f.id, metric),
                "{}: no {metric} alarm",
                f.id
            );
        }
        let timeout = f.props["Timeout"].as_u64().expect("explicit Timeout");
        assert!(
            f.props["MemorySize"].as_u64().is_some(),
            "{}: explicit MemorySize",
            f.id
        );
        for event in f.props["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(_, e)| e)
        {
            match event["Type"].as_str() {
                Some("S3") => {
                    let destination = &f.props["EventInvokeConfig"]["DestinationConfig"]
                        ["OnFailure"]["Destination"];
                    let (_, target) = tag(destination).expect("an OnFailure destination");
                    let queue = target.trim_end_matches(".Arn");
                    assert_eq!(
                        t["Resources"][queue]["Type"].as_str(),
                        Some("AWS::SQS::Queue")
                    );
                    assert!(alarm_on_queue(&t, queue), "{}: no alarm on {queue}", f.id);
                    assert!(alarm_on_function(&t, &f.id, "DestinationDeliveryFailures"));
                }
                Some("SQS") => {
                    let (_, source) = tag(&event["Properties"]["Queue"]).unwrap();
                    let queue = &t["Resources"][source.trim_end_matches(".Arn")];
                    let (_, dlq) =
                        tag(&queue["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
                            .expect("redrive");
                    let dlq = dlq.trim_end_matches(".Arn");
                    assert!(alarm_on_queue(&t, dlq), "{}: no alarm on {dlq}", f.id);
                    let visibility = queue["Properties"]["VisibilityTimeout"].as_u64().unwrap();
                    assert!(
                        visibility >= 6 * timeout,
                        "visibility {visibility}s < 6 x timeout {timeout}s"
                    );
                    let types = event["Properties"]["FunctionResponseTypes"]
                        .as_sequence()
                        .unwrap();
                    assert!(types
                        .iter()
                        .any(|v| v.as_str() == Some("ReportBatchItemFailures")));
                }
                _ => {}
            }
        }
    }
    // Queues the functions send to have their own dead-letter queue and alarm.
    let (_, dlq) =
        tag(&t["Resources"]["PaymentQueue"]["Properties"]["RedrivePolicy"]["deadLetterTargetArn"])
            .unwrap();
    assert!(alarm_on_queue(&t, dlq.trim_end_matches(".Arn")));
    assert!(
        alarm_on_queue(&t, "OrdersDeadLetterQueue"),
        "parked poison messages raise an alarm"
    );
}
