//! template.yaml and the code agree: binaries, environment variables, IAM grants (exactly what the
//! code calls, per resource), dead-letter queues and their alarms; and the template's own safety
//! rules: bounded concurrency, alarms that reach someone in prod, closed sign-up, pinned KMS grants.

use std::collections::{BTreeMap, BTreeSet};

use integration_tests::template::{
    alarm_on_function, alarm_on_queue, event_source_targets, functions, load as template, of_type,
    placeholders, resolve, resource_of, resources, rules_accept, sources_not_on_an_alias, tag,
    Function, Grant,
};
use integration_tests::{dashboard, translated_template as translated, workspace_root};
use serde_yaml::Value;
use settings::Env;

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
        "order-settlement" => order_settlement::config::Config::from_env(env)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        other => panic!("no configuration known for {other}"),
    }
    .unwrap_or_else(|e| panic!("{binary} does not start with the template's environment: {e}"));
    telemetry::read_env(env);
    env.names_read()
}

/// Set by Lambda itself, from the template's `LoggingConfig`, `Tracing` (checked below) and
/// `MemorySize` (explicit on every function: `async_and_queue_fed_functions_have_...`).
const SET_BY_LAMBDA: [&str; 4] = [
    "AWS_LAMBDA_LOG_FORMAT",
    "AWS_LAMBDA_LOG_LEVEL",
    "AWS_XRAY_DAEMON_ADDRESS",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
];

/// Read by the code with a documented default, deliberately not set by the template.
const OPTIONAL: [&str; 8] = [
    "LOG_LEVEL",
    "OTEL_SDK_DISABLED",
    "CACHE_CONTROL",
    "MAX_PIXELS_PER_BYTE",
    "BACKGROUND_COLOR",
    "MAX_DECODE_BYTES",
    "PAGE_TOKEN_SECRET",
    "PAYMENT_TIMEOUT_SECS",
];

#[test]
fn every_function_binary_exists_in_the_workspace() {
    let t = template();
    let fns = functions(&t);
    assert_eq!(fns.len(), 4);
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
    let read_doc = |path: &str| {
        std::fs::read_to_string(workspace_root().join(path))
            .unwrap_or_else(|e| panic!("{path}: {e}"))
    };
    let configuration = read_doc("docs/configuration.md");
    let mut read_by: Vec<(String, BTreeSet<String>)> = Vec::new();
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
            .filter(|n| !OPTIONAL.contains(&n.as_str()) && !SET_BY_LAMBDA.contains(&n.as_str()))
            .collect();
        assert!(
            unset.is_empty(),
            "{}: the code reads variables the template does not set: {unset:?}",
            f.id
        );
        read_by.push((f.binary.clone(), read));
    }
    // Every variable is in the configuration page; one that not every function reads is also in
    // the README of each function that reads it.
    let shared: BTreeSet<String> = read_by
        .iter()
        .map(|(_, read)| read.clone())
        .reduce(|a, b| a.intersection(&b).cloned().collect())
        .unwrap_or_default();
    for (binary, read) in &read_by {
        let readme_path = format!("functions/{binary}/README.md");
        let readme = read_doc(&readme_path);
        for name in read {
            assert!(
                configuration.contains(&format!("`{name}`")),
                "{name} is not documented in docs/configuration.md"
            );
            assert!(
                shared.contains(name) || readme.contains(&format!("`{name}`")),
                "{name} ({binary} reads it) is not documented in {readme_path}"
            );
        }
    }
    // What Lambda sets those variables from.
    let globals = &t["Globals"]["Function"];
    assert_eq!(
        globals["Tracing"], "Active",
        "AWS_XRAY_DAEMON_ADDRESS comes with active tracing"
    );
    assert_eq!(globals["LoggingConfig"]["LogFormat"], "JSON");
    assert_eq!(
        tag(&globals["LoggingConfig"]["ApplicationLogLevel"]),
        Some(("Ref".to_string(), "LogLevel".to_string())),
        "AWS_LAMBDA_LOG_LEVEL comes from ApplicationLogLevel"
    );
}

/// What each function's code calls, per resource: the adapters' action tables applied to the
/// resources its environment names, plus the KMS key of every encrypted queue or topic it sends to,
/// is fed by, or fails over to.
fn grants_the_code_needs(t: &Value, f: &Function) -> BTreeSet<Grant> {
    use adapters::{aws, dynamo_idempotency, dynamo_orders, dynamo_users, s3, secrets, sns, sqs};
    let on = |variable: &str| resource_of(t, &f.env[variable]);
    let mut needs: Vec<(String, &[&str])> = match f.binary.as_str() {
        "image-compressor" => vec![
            (on("SOURCE_BUCKET"), s3::S3_READ_ACTIONS),
            (on("DESTINATION_BUCKET"), s3::S3_READ_ACTIONS),
            (on("DESTINATION_BUCKET"), s3::S3_WRITE_ACTIONS),
        ],
        "user-api" => vec![
            (on("USERS_TABLE"), dynamo_users::DYNAMO_USER_TABLE_ACTIONS),
            // Idempotency records live in the users table.
            (
                on("USERS_TABLE"),
                dynamo_idempotency::DYNAMO_IDEMPOTENCY_ACTIONS,
            ),
            (
                format!("{}/index", on("USERS_TABLE")),
                dynamo_users::DYNAMO_USER_INDEX_ACTIONS,
            ),
            (on("PAGE_TOKEN_SECRET_ARN"), secrets::READ_SECRET_ACTIONS),
            (
                resource_of(
                    t,
                    &t["Resources"][on("PAGE_TOKEN_SECRET_ARN").as_str()]["Properties"]["KmsKeyId"],
                ),
                secrets::SECRET_KEY_ACTIONS,
            ),
        ],
        "order-processor" => vec![
            (on("ORDERS_TABLE"), dynamo_orders::ORDERS_TABLE_ACTIONS),
            (
                on("INVENTORY_TABLE"),
                dynamo_orders::INVENTORY_TABLE_ACTIONS,
            ),
            (on("PAYMENT_QUEUE_URL"), sqs::SQS_SEND_ACTIONS),
            (on("ORDERS_DLQ_URL"), sqs::SQS_SEND_ACTIONS),
            (on("EXPIRY_QUEUE_URL"), sqs::SQS_SEND_ACTIONS),
            (on("ORDER_EVENTS_TOPIC_ARN"), sns::SNS_PUBLISH_ACTIONS),
        ],
        "order-settlement" => vec![
            (
                on("ORDERS_TABLE"),
                dynamo_orders::SETTLEMENT_ORDERS_TABLE_ACTIONS,
            ),
            (
                on("INVENTORY_TABLE"),
                dynamo_orders::INVENTORY_TABLE_ACTIONS,
            ),
            (on("ORDER_EVENTS_TOPIC_ARN"), sns::SNS_PUBLISH_ACTIONS),
        ],
        other => panic!("no adapter table for {other}"),
    };
    // Queues and topics the function touches, including those Lambda touches with its role.
    let mut touched: Vec<String> = needs.iter().map(|(r, _)| r.clone()).collect();
    for event in f.props["Events"].as_mapping().into_iter().flatten() {
        if event.1["Type"].as_str() == Some("SQS") {
            touched.push(resource_of(t, &event.1["Properties"]["Queue"]));
        }
    }
    let on_failure = &f.props["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]["Destination"];
    if !on_failure.is_null() {
        touched.push(resource_of(t, on_failure));
    }
    for resource in touched {
        let key = &t["Resources"][resource.as_str()]["Properties"]["KmsMasterKeyId"];
        if !key.is_null() {
            needs.push((resource_of(t, key), aws::KMS_ENCRYPTED_TARGET_ACTIONS));
        }
    }
    needs
        .into_iter()
        .flat_map(|(resource, actions)| {
            actions
                .iter()
                .map(move |a| (resource.clone(), a.to_string()))
        })
        .collect()
}

#[test]
fn every_function_is_granted_exactly_what_its_code_calls() {
    let t = template();
    for f in functions(&t) {
        let needed = grants_the_code_needs(&t, &f);
        let missing: Vec<_> = needed.difference(&f.grants).collect();
        let unused: Vec<_> = f.grants.difference(&needed).collect();
        assert!(missing.is_empty(), "{}: policy lacks {missing:?}", f.id);
        assert!(
            unused.is_empty(),
            "{}: policy grants what the code never calls: {unused:?}",
            f.id
        );
    }
}

#[test]
fn the_grant_check_catches_an_over_grant_and_a_missing_grant() {
    // The check above, on a copy of the template with one action added and one removed.
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    for (from, to, what) in [
        (
            "Action: [dynamodb:GetItem, dynamodb:PutItem, dynamodb:DeleteItem]",
            "Action: [dynamodb:GetItem, dynamodb:PutItem, dynamodb:DeleteItem, dynamodb:Scan]",
            "dynamodb:Scan",
        ),
        (
            "Action: [dynamodb:GetItem, dynamodb:PutItem, dynamodb:DeleteItem]",
            "Action: [dynamodb:GetItem, dynamodb:PutItem]",
            "dynamodb:DeleteItem",
        ),
    ] {
        assert!(text.contains(from));
        let changed: Value = serde_yaml::from_str(&text.replacen(from, to, 1)).unwrap();
        let f = functions(&changed)
            .into_iter()
            .find(|f| f.binary == "user-api")
            .unwrap();
        let needed = grants_the_code_needs(&changed, &f);
        let differs = needed.symmetric_difference(&f.grants).collect::<Vec<_>>();
        assert_eq!(
            differs,
            [&("UsersTable".to_string(), what.to_string())],
            "{what}"
        );
    }
}

#[test]
fn alarms_must_reach_someone_in_prod() {
    let t = template();
    let params = |stage, email| BTreeMap::from([("Stage", stage), ("AlarmEmail", email)]);
    assert!(
        !rules_accept(&t, &params("prod", "")),
        "prod without an address"
    );
    assert!(rules_accept(&t, &params("prod", "ops@example.com")));
    assert!(rules_accept(&t, &params("dev", "")), "optional for dev");
    let subscription = &t["Resources"]["AlarmEmailSubscription"];
    assert_eq!(subscription["Condition"].as_str(), Some("HasAlarmEmail"));
    assert_eq!(
        tag(&subscription["Properties"]["TopicArn"]),
        Some(("Ref".into(), "AlarmTopic".into()))
    );
}

#[test]
fn every_function_has_bounded_concurrency() {
    let t = template();
    for f in functions(&t) {
        let reserved = &f.props["ReservedConcurrentExecutions"];
        let skips_reservation_check = t["Resources"][f.id.as_str()]["Metadata"]["checkov"]["skip"]
            .as_sequence()
            .into_iter()
            .flatten()
            .any(|s| s["id"].as_str() == Some("CKV_AWS_115"));
        if !reserved.is_null() {
            let (_, parameter) = tag(reserved).expect("a parameter");
            assert!(t["Parameters"][parameter.as_str()]["MinValue"].as_u64() >= Some(1));
            assert!(!skips_reservation_check, "{}: reserved, yet skipped", f.id);
            continue;
        }
        // Without a reservation every source must bound it (what the checkov skip claims).
        assert!(skips_reservation_check, "{}", f.id);
        for (name, event) in f.props["Events"].as_mapping().into_iter().flatten() {
            let bounded = match event["Type"].as_str() {
                Some("SQS") => event["Properties"]["ScalingConfig"]["MaximumConcurrency"]
                    .as_u64()
                    .is_some(),
                Some("HttpApi") => {
                    let api = resource_of(&t, &event["Properties"]["ApiId"]);
                    let route = &t["Resources"][api.as_str()]["Properties"]["DefaultRouteSettings"];
                    route["ThrottlingRateLimit"].as_u64().is_some()
                        && route["ThrottlingBurstLimit"].as_u64().is_some()
                }
                // An S3 notification invokes asynchronously once per object: nothing bounds it.
                _ => false,
            };
            assert!(
                bounded,
                "{}: event {name:?} leaves concurrency unbounded",
                f.id
            );
        }
    }
}

#[test]
fn uploads_are_not_filtered_by_a_case_sensitive_suffix() {
    let t = template();
    for f in functions(&t) {
        for (name, event) in f.props["Events"].as_mapping().into_iter().flatten() {
            if event["Type"].as_str() == Some("S3") {
                // S3 suffix filters are case-sensitive (`.jpg` misses `IMG.JPG`); the function
                // reads the format from the bytes, so it takes every object.
                assert!(
                    event["Properties"]["Filter"].is_null(),
                    "{}: {name:?} filters uploads",
                    f.id
                );
            }
        }
    }
}

#[test]
fn sign_up_is_by_invitation_only() {
    let t = template();
    let pools: Vec<_> = resources(&t)
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Cognito::UserPool"))
        .collect();
    assert_eq!(pools.len(), 1);
    for pool in pools {
        assert_eq!(
            pool["Properties"]["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"].as_bool(),
            Some(true)
        );
        assert_eq!(
            pool["Properties"]["AutoVerifiedAttributes"][0].as_str(),
            Some("email")
        );
    }
}

#[test]
fn kms_grants_to_services_are_pinned_to_this_account() {
    let t = template();
    let mut checked = 0;
    for r in resources(&t).values() {
        if r["Type"].as_str() != Some("AWS::KMS::Key") {
            continue;
        }
        for statement in r["Properties"]["KeyPolicy"]["Statement"]
            .as_sequence()
            .unwrap()
        {
            if statement["Principal"]["Service"].is_null() {
                continue;
            }
            checked += 1;
            let condition = &statement["Condition"];
            let source_account = tag(&condition["StringEquals"]["aws:SourceAccount"])
                == Some(("Ref".into(), "AWS::AccountId".into()));
            // Or an encryption context naming an ARN of this account (how CloudWatch Logs is pinned).
            let context_in_account = ["ArnLike", "ArnEquals"].iter().any(|op| {
                condition[*op]
                    .as_mapping()
                    .into_iter()
                    .flatten()
                    .any(|(k, v)| {
                        k.as_str()
                            .unwrap_or_default()
                            .starts_with("kms:EncryptionContext:")
                            && tag(v).is_some_and(|(kind, text)| {
                                kind == "Sub" && text.contains("${AWS::AccountId}")
                            })
                    })
            });
            assert!(
                source_account || context_in_account,
                "{:?} grants a service the key without pinning it to this account",
                statement["Sid"]
            );
        }
    }
    assert!(checked >= 2);
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

#[test]
fn the_dashboard_shows_every_alarm_and_only_metrics_the_code_emits() {
    use telemetry::metric_catalog::CATALOG;
    use telemetry::METRICS_NAMESPACE;
    let t = template();
    let dashboards: Vec<&Value> = resources(&t)
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::CloudWatch::Dashboard"))
        .collect();
    assert_eq!(dashboards.len(), 1);
    let (kind, body) = tag(&dashboards[0]["Properties"]["DashboardBody"]).expect("!Sub body");
    assert_eq!(kind, "Sub");
    // Every substitution names a parameter, a pseudo parameter or a resource of the stack.
    let mut referenced = BTreeSet::new();
    for placeholder in placeholders(&body) {
        let id = placeholder.split('.').next().unwrap_or_default();
        assert!(
            id.starts_with("AWS::")
                || !t["Parameters"][id].is_null()
                || !t["Resources"][id].is_null(),
            "${{{placeholder}}} names nothing in the template"
        );
        referenced.insert(id.to_string());
    }
    let mut text = body.clone();
    while let Some(start) = text.find("${") {
        let end = start + text[start..].find('}').unwrap();
        text.replace_range(start..=end, "resolved");
    }
    let doc: Value = serde_json::from_str::<serde_json::Value>(&text)
        .map(|v| serde_yaml::to_value(v).unwrap())
        .expect("the dashboard body is JSON");
    let binaries: BTreeSet<String> = functions(&t).into_iter().map(|f| f.binary).collect();
    let mut shown = BTreeSet::new();
    for widget in doc["widgets"].as_sequence().unwrap() {
        for metric in widget["properties"]["metrics"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            let parts: Vec<&str> = metric
                .as_sequence()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let (namespace, name) = (parts[0], parts[1]);
            if namespace != METRICS_NAMESPACE {
                assert!(namespace.starts_with("AWS/"), "{namespace}");
                continue;
            }
            let spec = CATALOG
                .iter()
                .find(|m| m.name == name)
                .unwrap_or_else(|| panic!("{name} is not a metric the code emits"));
            let pairs: BTreeMap<&str, &str> = parts[2..]
                .chunks(2)
                .map(|pair| (pair[0], pair[1]))
                .collect();
            let mut expected: BTreeSet<&str> = spec.dimensions.iter().copied().collect();
            expected.insert("service");
            assert_eq!(
                pairs.keys().copied().collect::<BTreeSet<_>>(),
                expected,
                "{name}: its dimensions"
            );
            let service = pairs["service"];
            assert!(binaries.contains(service), "{name}: service {service}");
            assert!(
                spec.emitted_by == service || spec.emitted_by == "every function",
                "{name} is not emitted by {service}"
            );
            shown.insert(name);
        }
    }
    let catalogued: BTreeSet<&str> = CATALOG.iter().map(|m| m.name).collect();
    // InvocationDuration is Lambda's own Duration, shown from AWS/Lambda.
    let hidden: Vec<&str> = catalogued.difference(&shown).copied().collect();
    assert!(
        hidden == ["InvocationDuration"],
        "business metrics missing from the dashboard: {hidden:?}"
    );
    let alarms: BTreeSet<String> = resources(&t)
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .map(|(id, _)| id.as_str().unwrap().to_string())
        .collect();
    let missing: Vec<_> = alarms.difference(&referenced).collect();
    assert!(
        missing.is_empty(),
        "alarms not on the dashboard: {missing:?}"
    );
    assert!(
        !t["Outputs"]["DashboardUrl"].is_null(),
        "the stack links its dashboard"
    );
}

#[test]
fn every_event_source_invokes_the_live_alias_and_each_rollout_watches_its_own_alarms() {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    let t = translated(&text);
    let targets = event_source_targets(&t);
    // S3 notification + its permission, the SQS mapping, six routes + their permissions, the
    // async failure destination.
    assert!(targets.len() >= 16, "{targets:?}");
    let bare = sources_not_on_an_alias(&t);
    assert!(
        bare.is_empty(),
        "event sources on the bare function: {bare:?}"
    );

    let source = template();
    for f in functions(&source) {
        let aliases = of_type(&t, "AWS::Lambda::Alias");
        let (_, alias) = aliases
            .iter()
            .find(|(_, a)| a["Properties"]["FunctionName"]["Ref"] == f.id.as_str())
            .unwrap_or_else(|| panic!("{}: no alias", f.id));
        assert_eq!(alias["Properties"]["Name"], "live");
        let group = alias["UpdatePolicy"]["CodeDeployLambdaAliasUpdate"]["DeploymentGroupName"]
            ["Ref"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: the alias is not moved by CodeDeploy", f.id));
        let group = &t["Resources"][group]["Properties"];
        assert_eq!(group["AutoRollbackConfiguration"]["Enabled"], true);
        let config = group["DeploymentConfigName"]["Fn::Sub"][1]["ConfigName"]
            .as_str()
            .unwrap_or_default();
        let expected = if f.binary == "user-api" {
            "Canary10Percent5Minutes"
        } else {
            "Canary10Percent10Minutes"
        };
        assert_eq!(config, expected, "{}", f.id);
        // What each rollout alarm watches and when it fires: template_canary.rs.
        let alarms = group["AlarmConfiguration"]["Alarms"].as_array().unwrap();
        assert!(
            !alarms.is_empty(),
            "{}: a rollout watched by no alarm",
            f.id
        );
    }
}

#[test]
fn the_alias_check_catches_an_event_source_on_the_bare_function() {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    // Without AutoPublishAlias (and so without the rollouts and provisioned concurrency that need
    // it), SAM wires every event source to the function itself.
    let mut without_alias = String::new();
    let mut in_preference = false;
    for line in text.lines() {
        in_preference = line == "      DeploymentPreference:"
            || line.starts_with("      ProvisionedConcurrencyConfig:")
            || (in_preference && line.starts_with("       "));
        if !in_preference && line != "    AutoPublishAlias: live" {
            without_alias.push_str(line);
            without_alias.push('\n');
        }
    }
    assert!(!without_alias.contains("AutoPublishAlias") && !without_alias.contains("Canary"));
    let bare = sources_not_on_an_alias(&translated(&without_alias));
    for source in [
        "OrderProcessorFunctionOrders",
        "SourceBucket",
        "UsersApi",
        "ImageCompressorFunctionUploadPermission",
    ] {
        assert!(
            bare.iter().any(|b| b.starts_with(&format!("{source} ->"))),
            "{source} not caught: {bare:?}"
        );
    }
    // A mapping written by hand to the bare function, next to the aliased ones.
    let by_hand = text.replacen(
        "\nResources:\n",
        "\nResources:\n  ByHand:\n    Type: AWS::Lambda::EventSourceMapping\n    Properties:\n      EventSourceArn: !GetAtt PaymentQueue.Arn\n      FunctionName: !Ref OrderProcessorFunction\n",
        1,
    );
    assert_eq!(
        sources_not_on_an_alias(&translated(&by_hand)),
        ["ByHand -> OrderProcessorFunction"]
    );
}

/// Idempotency records expire through the users table's TTL on the attribute the adapter writes,
/// and the function is told how long to keep an answer.
#[test]
fn idempotency_records_expire_by_the_users_table_ttl() {
    let t = template();
    let ttl = &t["Resources"]["UsersTable"]["Properties"]["TimeToLiveSpecification"];
    assert_eq!(ttl["Enabled"], Value::Bool(true));
    assert_eq!(
        ttl["AttributeName"].as_str(),
        Some(adapters::dynamo_idempotency::TTL_ATTRIBUTE)
    );
    let vars = &t["Resources"]["UserApiFunction"]["Properties"]["Environment"]["Variables"];
    let seconds: u64 = vars["IDEMPOTENCY_TTL_SECONDS"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("IDEMPOTENCY_TTL_SECONDS is a number of seconds");
    let timeout = t["Resources"]["UserApiFunction"]["Properties"]["Timeout"]
        .as_u64()
        .expect("Timeout");
    assert!(
        seconds > timeout,
        "an answer outlives the invocation that made it"
    );
}

/// The dashboard in template.yaml is the one generated from the metric catalogue and the template
/// (`tests/src/dashboard.rs`); `make dashboard` rewrites it.
#[test]
fn the_dashboard_is_generated_from_the_metric_catalogue() {
    let path = workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let generated = dashboard::body(&template());
    if std::env::var_os("UPDATE_DASHBOARD").is_some() {
        let updated = dashboard::with_body(&text, &generated).expect("a DashboardBody");
        std::fs::write(&path, updated).unwrap();
        return;
    }
    let current = dashboard::body_in(&text).expect("a DashboardBody");
    assert!(
        current == generated,
        "template.yaml's dashboard is stale: run `make dashboard`"
    );
}
