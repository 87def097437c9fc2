//! Provisioned concurrency in template.yaml: one parameter per function (0, the default, leaves it
//! off), a condition that is true only above 0, and the function's `ProvisionedConcurrencyConfig`
//! (which SAM puts on the `live` alias that AutoPublishAlias publishes) set only under it.

use integration_tests::workspace_root;
use serde_yaml::Value;

fn template() -> Value {
    let path = workspace_root().join("template.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("template.yaml: {e}"))
}

/// `!Tag value` → ("Tag", value).
fn tagged(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        )),
        _ => None,
    }
}

fn is_ref(v: &Value, name: &str) -> bool {
    tagged(v).is_some_and(|(tag, value)| tag == "Ref" && value.as_str() == Some(name))
}

/// The logical ids of the template's functions.
fn function_ids(t: &Value) -> Vec<String> {
    t["Resources"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .filter_map(|(id, _)| id.as_str().map(str::to_string))
        .collect()
}

/// `ImageCompressorFunction` → `ImageCompressor`.
fn stem(function_id: &str) -> &str {
    function_id.strip_suffix("Function").unwrap_or(function_id)
}

#[test]
fn every_function_has_a_provisioned_concurrency_parameter_off_by_default() {
    let t = template();
    let ids = function_ids(&t);
    assert_eq!(ids.len(), 4, "the suite's four functions: {ids:?}");
    for id in &ids {
        let name = format!("{}ProvisionedConcurrency", stem(id));
        let p = &t["Parameters"][name.as_str()];
        assert_eq!(
            p["Type"].as_str(),
            Some("Number"),
            "{name}: a Number parameter"
        );
        assert_eq!(p["Default"].as_u64(), Some(0), "{name}: 0 (off) by default");
        assert_eq!(p["MinValue"].as_u64(), Some(0), "{name}: never negative");
    }
}

#[test]
fn every_function_sets_provisioned_concurrency_only_when_its_parameter_is_above_zero() {
    let t = template();
    let alias = t["Globals"]["Function"]["AutoPublishAlias"].as_str();
    for id in function_ids(&t) {
        let props = &t["Resources"][id.as_str()]["Properties"];
        assert_eq!(
            props["AutoPublishAlias"].as_str().or(alias),
            Some("live"),
            "{id}: provisioned concurrency goes on the `live` alias SAM publishes"
        );
        let param = format!("{}ProvisionedConcurrency", stem(&id));
        let condition = format!("{}IsProvisioned", stem(&id));

        // Condition: !Not [!Equals [!Ref <param>, "0"]]
        let (not, args) = tagged(&t["Conditions"][condition.as_str()])
            .unwrap_or_else(|| panic!("{id}: no condition {condition}"));
        assert_eq!(not, "Not", "{condition}");
        let (equals, pair) =
            tagged(&args[0]).unwrap_or_else(|| panic!("{condition}: !Not [!Equals ...]"));
        assert_eq!(equals, "Equals", "{condition}");
        assert!(
            is_ref(&pair[0], &param),
            "{condition} compares {param}: {pair:?}"
        );
        assert_eq!(
            pair[1].as_str(),
            Some("0"),
            "{condition} is false at 0 (a Number parameter is compared as a string)"
        );

        // ProvisionedConcurrencyConfig: !If [<condition>, {ProvisionedConcurrentExecutions: !Ref <param>}, !Ref AWS::NoValue]
        let (tag, branches) = tagged(&props["ProvisionedConcurrencyConfig"])
            .unwrap_or_else(|| panic!("{id}: ProvisionedConcurrencyConfig under a condition"));
        assert_eq!(tag, "If", "{id}");
        assert_eq!(
            branches[0].as_str(),
            Some(condition.as_str()),
            "{id}: under {condition}"
        );
        assert!(
            is_ref(&branches[1]["ProvisionedConcurrentExecutions"], &param),
            "{id}: the parameter's value when on: {:?}",
            branches[1]
        );
        assert!(
            is_ref(&branches[2], "AWS::NoValue"),
            "{id}: nothing when off: {:?}",
            branches[2]
        );
    }
}
