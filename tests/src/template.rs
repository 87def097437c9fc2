//! A small CloudFormation evaluator over template.yaml, for the tests that check the template
//! against the code: the template as written (`load`) or as CloudFormation runs it (the SAM
//! transform applied: `translated_template`), the functions with their environment and
//! inline grants, the resource a reference names, parameter values as a deployed function sees
//! them, the intrinsic functions `Rules` use, alarms on a queue or a function, and every event
//! source with what it invokes.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_yaml::Value;

use crate::workspace_root;

/// A template text as CloudFormation runs it: the AWS::Serverless transform applied
/// (`tools/local_stack.py translate`, samtranslator, from the project's venv).
pub fn translated_template(text: &str) -> serde_json::Value {
    let path = std::env::temp_dir().join(format!(
        "template-{}-{:x}.yaml",
        std::process::id(),
        text.len() ^ text.bytes().map(usize::from).sum::<usize>()
    ));
    std::fs::write(&path, text).unwrap();
    let run = Command::new(workspace_root().join(".venv/bin/python"))
        .arg(workspace_root().join("tools/local_stack.py"))
        .args(["translate", "--template"])
        .arg(&path)
        .output()
        .expect("run local_stack.py translate");
    let _ = std::fs::remove_file(&path);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    serde_json::from_slice(&run.stdout).unwrap()
}

/// template.yaml as written, tags (`!Ref`, `!GetAtt`, `!Sub`...) kept.
pub fn load() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// `!Ref X`, `!GetAtt X.Attr` → ("Ref"/"GetAtt", "X..."), for tagged CloudFormation values.
pub fn tag(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            t.value.as_str().unwrap_or_default().to_string(),
        )),
        _ => None,
    }
}

/// The template's `Resources`.
pub fn resources(t: &Value) -> &serde_yaml::Mapping {
    t["Resources"].as_mapping().unwrap()
}

/// (logical resource, IAM action): `UsersTable/index` stands for the table's indexes.
pub type Grant = (String, String);

/// A function of the template: its logical id, the binary it builds, its environment (globals
/// included), the grants of its inline policies and its properties.
pub struct Function {
    pub id: String,
    pub binary: String,
    pub env: BTreeMap<String, Value>,
    pub grants: BTreeSet<Grant>,
    pub props: Value,
}

/// The `${...}` placeholders of a `!Sub` string.
pub fn placeholders(text: &str) -> Vec<&str> {
    text.split("${")
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(inner, _)| inner))
        .collect()
}

/// The logical resource a value names: `!Ref X`, `!GetAtt X.Arn`, `!Sub "${X.Arn}/index/..."`
/// (`X/index`), `!Sub "${X.Arn}/*"` (`X`), or a bucket named by the same `!Sub` as its `BucketName`
/// (the upload bucket is named, not referenced, to keep the S3 trigger free of a cycle).
pub fn resource_of(t: &Value, v: &Value) -> String {
    let (kind, text) = tag(v).unwrap_or_else(|| panic!("{v:?} names no stack resource"));
    match kind.as_str() {
        "Ref" => text,
        "GetAtt" => text.trim_end_matches(".Arn").to_string(),
        "Sub" => {
            if let Some(id) = placeholders(&text)
                .into_iter()
                .find_map(|p| p.strip_suffix(".Arn"))
            {
                return if text.contains("/index/") {
                    format!("{id}/index")
                } else {
                    id.to_string()
                };
            }
            resources(t)
                .iter()
                .find_map(|(id, r)| {
                    tag(&r["Properties"]["BucketName"])
                        .filter(|(k, name)| k == "Sub" && text.contains(name.as_str()))
                        .map(|_| id.as_str().unwrap().to_string())
                })
                .unwrap_or_else(|| panic!("!Sub {text:?} names no stack resource"))
        }
        other => panic!("!{other} {text:?} names no stack resource"),
    }
}

/// Every `AWS::Serverless::Function`, with its inline grants checked for shape (no `*`).
pub fn functions(t: &Value) -> Vec<Function> {
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
        let mut grants = BTreeSet::new();
        for policy in props["Policies"].as_sequence().into_iter().flatten() {
            for (name, body) in policy.as_mapping().unwrap() {
                // SAM's policy templates grant more than the code calls (Scan, batches, ...).
                assert_eq!(
                    name.as_str(),
                    Some("Statement"),
                    "{id:?}: inline statements only, so every grant is one the code uses"
                );
                for statement in body.as_sequence().unwrap() {
                    assert_eq!(statement["Effect"].as_str(), Some("Allow"));
                    assert_ne!(
                        statement["Resource"].as_str(),
                        Some("*"),
                        "{id:?}: no * resources"
                    );
                    let actions: Vec<String> = match &statement["Action"] {
                        Value::String(a) => vec![a.clone()],
                        Value::Sequence(list) => list
                            .iter()
                            .map(|a| a.as_str().unwrap().to_string())
                            .collect(),
                        other => panic!("unexpected Action {other:?}"),
                    };
                    for action in &actions {
                        assert!(!action.contains('*'), "{id:?}: no wildcard action {action}");
                        grants.insert((resource_of(t, &statement["Resource"]), action.clone()));
                    }
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
            grants,
            props,
        });
    }
    out
}

/// A value for an environment variable as the deployed function would see it: parameter defaults,
/// literals, and plausible stand-ins for resource references.
pub fn resolve(t: &Value, name: &str, v: &Value) -> String {
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
    // SQS names a FIFO queue `<name>.fifo`, whoever generates the name.
    let fifo = tag(v)
        .filter(|(kind, _)| kind == "Ref")
        .is_some_and(|(_, target)| {
            t["Resources"][target.as_str()]["Properties"]["FifoQueue"].as_bool() == Some(true)
        });
    match name {
        n if n.ends_with("_URL") => format!(
            "https://sqs.us-east-1.amazonaws.com/123456789012/{}{}",
            n.to_lowercase(),
            if fifo { ".fifo" } else { "" }
        ),
        n if n.ends_with("_ARN") => {
            format!("arn:aws:sns:us-east-1:123456789012:{}", n.to_lowercase())
        }
        n if n.contains("ORIGINS") => "https://app.example.com".into(),
        n => format!("stack-{}", n.to_lowercase().replace('_', "-")),
    }
}

/// A tiny evaluator for the intrinsic functions `Rules` use, over parameter values.
pub fn eval(v: &Value, params: &BTreeMap<&str, &str>) -> Value {
    match tag(v) {
        Some((kind, name)) if kind == "Ref" => Value::String(params[name.as_str()].to_string()),
        Some(_) => {
            let Value::Tagged(tagged) = v else {
                unreachable!()
            };
            let args: Vec<Value> = tagged
                .value
                .as_sequence()
                .unwrap()
                .iter()
                .map(|a| eval(a, params))
                .collect();
            Value::Bool(match tagged.tag.to_string().trim_start_matches('!') {
                "Equals" => args[0] == args[1],
                "Not" => !args[0].as_bool().unwrap(),
                "And" => args.iter().all(|a| a.as_bool().unwrap()),
                "Or" => args.iter().any(|a| a.as_bool().unwrap()),
                other => panic!("no evaluator for !{other}"),
            })
        }
        None => v.clone(),
    }
}

/// Whether CloudFormation would accept these parameters under the template's `Rules`.
pub fn rules_accept(t: &Value, params: &BTreeMap<&str, &str>) -> bool {
    t["Rules"]
        .as_mapping()
        .into_iter()
        .flatten()
        .all(|(_, rule)| {
            let applies = rule["RuleCondition"].is_null()
                || eval(&rule["RuleCondition"], params).as_bool().unwrap();
            !applies
                || rule["Assertions"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .all(|a| eval(&a["Assert"], params).as_bool().unwrap())
        })
}

/// Whether an alarm watches the depth of this queue.
pub fn alarm_on_queue(t: &Value, queue: &str) -> bool {
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

/// Whether an alarm watches this metric of this function.
pub fn alarm_on_function(t: &Value, function: &str, metric: &str) -> bool {
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

/// The resources of one type in a translated template.
pub fn of_type<'a>(
    t: &'a serde_json::Value,
    kind: &str,
) -> Vec<(&'a String, &'a serde_json::Value)> {
    t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == kind)
        .collect()
}

/// Every way an event reaches a function, with what it invokes: `(source, target)`, where the
/// target is the logical id referenced (or `$LATEST` for an unqualified async config).
pub fn event_source_targets(t: &serde_json::Value) -> Vec<(String, String)> {
    let mut targets = Vec::new();
    let named = |v: &serde_json::Value| v["Ref"].as_str().unwrap_or("<not a Ref>").to_string();
    for (id, r) in of_type(t, "AWS::Lambda::EventSourceMapping") {
        targets.push((id.clone(), named(&r["Properties"]["FunctionName"])));
    }
    for (id, r) in of_type(t, "AWS::Lambda::Permission") {
        targets.push((id.clone(), named(&r["Properties"]["FunctionName"])));
    }
    for (id, r) in of_type(t, "AWS::S3::Bucket") {
        let configs = &r["Properties"]["NotificationConfiguration"]["LambdaConfigurations"];
        for c in configs.as_array().into_iter().flatten() {
            targets.push((id.clone(), named(&c["Function"])));
        }
    }
    for (id, r) in of_type(t, "AWS::Lambda::EventInvokeConfig") {
        let qualifier = r["Properties"]["Qualifier"].as_str().unwrap_or("$LATEST");
        let target = if qualifier == "$LATEST" {
            "$LATEST".to_string()
        } else {
            format!(
                "{}Alias{qualifier}",
                named(&r["Properties"]["FunctionName"])
            )
        };
        targets.push((id.clone(), target));
    }
    // HTTP API integrations: `arn:...:functions/${Target}/invocations` in the OpenAPI body.
    fn integrations(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(uri) = map
                    .get("x-amazon-apigateway-integration")
                    .and_then(|i| i["uri"]["Fn::Sub"].as_str())
                {
                    out.extend(
                        placeholders(uri)
                            .into_iter()
                            .map(|p| p.trim_end_matches(".Arn").to_string())
                            .filter(|p| !p.starts_with("AWS::")),
                    );
                }
                map.values().for_each(|v| integrations(v, out));
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| integrations(v, out)),
            _ => {}
        }
    }
    for (id, r) in of_type(t, "AWS::ApiGatewayV2::Api") {
        let mut found = Vec::new();
        integrations(&r["Properties"]["Body"], &mut found);
        targets.extend(found.into_iter().map(|target| (id.clone(), target)));
    }
    targets
}

/// Event sources that do not invoke an `AWS::Lambda::Alias` (the bare function is `$LATEST`).
pub fn sources_not_on_an_alias(t: &serde_json::Value) -> Vec<String> {
    let aliases: BTreeSet<&String> = of_type(t, "AWS::Lambda::Alias")
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    event_source_targets(t)
        .into_iter()
        .filter(|(_, target)| !aliases.contains(target))
        .map(|(source, target)| format!("{source} -> {target}"))
        .collect()
}
