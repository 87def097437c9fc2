//! Stateful resources survive a replacement and a stack deletion: every resource of a type that
//! holds data nobody can rebuild keeps `DeletionPolicy` and `UpdateReplacePolicy` (`Retain`, or
//! `Snapshot` where the type has snapshots) and the service's own deletion protection. Checked on
//! the template as CloudFormation runs it (the SAM transform applied), so that a stateful resource
//! a SAM type generates is held to the same rule; every resource type of the stack is classified,
//! so that a new kind of resource cannot slip through unexamined.

use std::collections::BTreeSet;

use integration_tests::{translated_template as translated, workspace_root};
use serde_json::Value;

/// Types whose data is the product's own (users, orders, stock, uploads, variants, sign-ins) or
/// makes it readable (the key): what each must carry besides the two policies.
const STATEFUL: &[(&str, Protection)] = &[
    (
        "AWS::DynamoDB::Table",
        Protection::Property("DeletionProtectionEnabled", Expect::Bool(true)),
    ),
    (
        "AWS::Cognito::UserPool",
        Protection::Property("DeletionProtection", Expect::Text("ACTIVE")),
    ),
    // A bucket cannot be deleted while it holds objects; the policies keep CloudFormation from
    // trying (and from failing a stack deletion halfway).
    ("AWS::S3::Bucket", Protection::PoliciesOnly),
    // A deleted key cannot be recovered after its waiting period, and with it whatever it
    // encrypted (messages in the dead-letter queues, log groups, the signing secret).
    ("AWS::KMS::Key", Protection::PoliciesOnly),
];

/// Types examined and judged not to hold state worth retaining (docs/deploy.md "What a deletion keeps").
const STATELESS: &[&str] = &[
    // Configuration, rebuilt identically from the template.
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    // The CDN in front of the variants: its cache refills from the bucket.
    "AWS::CloudFront::CachePolicy",
    "AWS::CloudFront::Distribution",
    "AWS::CloudFront::Function",
    "AWS::CloudFront::OriginAccessControl",
    "AWS::CloudFront::ResponseHeadersPolicy",
    "AWS::CodeDeploy::Application",
    "AWS::CodeDeploy::DeploymentGroup",
    "AWS::Cognito::UserPoolClient",
    "AWS::Cognito::UserPoolGroup",
    "AWS::IAM::Role",
    "AWS::Lambda::Alias",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::Function",
    "AWS::Lambda::Permission",
    // SAM already retains every published version.
    "AWS::Lambda::Version",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SNS::Topic",
    // Logs expire by LogRetentionDays anyway; a retained access-log group would keep its fixed
    // name and block re-creating a stack of the same name.
    "AWS::Logs::LogGroup",
    // Work in flight: drained (dead-letter queues redriven or read) before a deletion.
    "AWS::SQS::Queue",
    // Signs short-lived page tokens only; a new key just ends the listings in progress.
    "AWS::SecretsManager::Secret",
];

#[derive(Clone, Copy)]
enum Expect {
    Bool(bool),
    Text(&'static str),
}

#[derive(Clone, Copy)]
enum Protection {
    PoliciesOnly,
    Property(&'static str, Expect),
}

/// Types that take the `Snapshot` deletion policy: none of the stateful types above does.
const SNAPSHOT_TYPES: &[&str] = &[
    "AWS::EC2::Volume",
    "AWS::ElastiCache::CacheCluster",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::Neptune::DBCluster",
    "AWS::RDS::DBCluster",
    "AWS::RDS::DBInstance",
    "AWS::Redshift::Cluster",
    "AWS::DocDB::DBCluster",
];

fn template_text() -> String {
    std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap()
}

/// What is wrong with the stack's retention, one line per fault; empty when every stateful
/// resource is protected and every type is classified.
fn retention_faults(t: &Value) -> Vec<String> {
    let mut faults = Vec::new();
    let resources = t["Resources"].as_object().expect("Resources");
    for (id, r) in resources {
        let kind = r["Type"].as_str().unwrap_or_default();
        let Some((_, protection)) = STATEFUL.iter().find(|(k, _)| *k == kind) else {
            if !STATELESS.contains(&kind) {
                faults.push(format!(
                    "{id}: {kind} is not classified as stateful or stateless"
                ));
            }
            continue;
        };
        for attribute in ["DeletionPolicy", "UpdateReplacePolicy"] {
            match r[attribute].as_str() {
                Some("Retain") => {}
                Some("Snapshot") if SNAPSHOT_TYPES.contains(&kind) => {}
                other => faults.push(format!("{id}: {attribute} is {other:?}, not Retain")),
            }
        }
        if let Protection::Property(name, expected) = protection {
            let value = &r["Properties"][*name];
            let ok = match expected {
                Expect::Bool(b) => value.as_bool() == Some(*b),
                Expect::Text(s) => value.as_str() == Some(*s),
            };
            if !ok {
                faults.push(format!(
                    "{id}: {name} is {value}, deletion protection is off"
                ));
            }
        }
    }
    faults
}

#[test]
fn every_stateful_resource_survives_a_replacement_and_a_stack_deletion() {
    let t = translated(&template_text());
    let faults = retention_faults(&t);
    assert!(faults.is_empty(), "{faults:#?}");
    // The rule is not vacuous: the tables, the user pool, both buckets and the key are there.
    let stateful: BTreeSet<&str> = t["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| STATEFUL.iter().any(|(k, _)| r["Type"] == *k))
        .map(|(id, _)| id.as_str())
        .collect();
    for id in [
        "UsersTable",
        "OrdersTable",
        "InventoryTable",
        "UserPool",
        "SourceBucket",
        "DestinationBucket",
        "SuiteKey",
    ] {
        assert!(stateful.contains(id), "{id} is not checked: {stateful:?}");
    }
}

#[test]
fn the_retention_check_catches_a_table_added_without_protection_and_an_unknown_type() {
    let text = template_text();
    let added = text.replacen(
        "\nResources:\n",
        "\nResources:\n  LaterTable:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      BillingMode: PAY_PER_REQUEST\n      AttributeDefinitions:\n        - { AttributeName: id, AttributeType: S }\n      KeySchema:\n        - { AttributeName: id, KeyType: HASH }\n  LaterFileSystem:\n    Type: AWS::EFS::FileSystem\n",
        1,
    );
    let faults = retention_faults(&translated(&added));
    for expected in [
        "LaterTable: DeletionPolicy",
        "LaterTable: UpdateReplacePolicy",
        "LaterTable: DeletionProtectionEnabled",
        "LaterFileSystem: AWS::EFS::FileSystem is not classified",
    ] {
        assert!(
            faults.iter().any(|f| f.starts_with(expected)),
            "{expected} not caught: {faults:#?}"
        );
    }
    // A Snapshot policy on a type without snapshots, and a pool with protection off.
    let weakened = text
        .replacen("DeletionPolicy: Retain", "DeletionPolicy: Snapshot", 1)
        .replace("DeletionProtection: ACTIVE", "DeletionProtection: INACTIVE");
    let faults = retention_faults(&translated(&weakened));
    assert!(
        faults
            .iter()
            .any(|f| f.contains("DeletionPolicy is Some(\"Snapshot\")")),
        "{faults:#?}"
    );
    assert!(
        faults
            .iter()
            .any(|f| f.starts_with("UserPool: DeletionProtection")),
        "{faults:#?}"
    );
}
