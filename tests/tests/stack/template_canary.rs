//! The alarms that gate a rollout judge the new version only. Each function's
//! `DeploymentPreference` alarms are read from template.yaml and evaluated the way CloudWatch
//! does (metric math over the metrics whose dimensions match exactly, `DatapointsToAlarm` of
//! `EvaluationPeriods`, missing data per `TreatMissingData`) against simulated Lambda metrics for
//! the length of the function's canary: the old version failing, throttles, transient errors the
//! function retries and a handful of invocations never roll back; a broken new version does,
//! inside the canary's window.

use std::collections::BTreeMap;

use integration_tests::workspace_root;
use serde_yaml::Value;

fn template() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// `!Ref X`, `!GetAtt X.Attr`, `!Sub "..."` → ("Ref"/"GetAtt"/"Sub", "X..."), for tagged values.
fn tag(v: &Value) -> Option<(String, String)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            t.value.as_str().unwrap_or_default().to_string(),
        )),
        _ => None,
    }
}

/// A stand-in physical name for a logical id.
fn physical(id: &str) -> String {
    format!("stack-{id}-1A2B3C")
}

/// The version the function's `live` alias moves to in the simulated rollout (distinct per
/// function, so that an alarm on another function's version would see nothing).
fn new_version(function: &str) -> String {
    (function.bytes().map(u32::from).sum::<u32>() % 900 + 100).to_string()
}

fn old_version(function: &str) -> String {
    (new_version(function).parse::<u32>().unwrap() - 1).to_string()
}

/// A dimension value as CloudWatch sees it once the stack is deployed and the rollout started.
fn resolve(v: &Value) -> String {
    match tag(v) {
        Some((kind, target)) if kind == "Ref" => physical(&target),
        Some((kind, target)) if kind == "GetAtt" => {
            let function = target
                .strip_suffix(".Version.Version")
                .unwrap_or_else(|| panic!("!GetAtt {target}: not a function's version number"));
            new_version(function)
        }
        Some((kind, text)) if kind == "Sub" => {
            let mut out = String::new();
            let mut rest = text.as_str();
            while let Some(start) = rest.find("${") {
                out.push_str(&rest[..start]);
                let end = start + rest[start..].find('}').unwrap();
                out.push_str(&physical(&rest[start + 2..end]));
                rest = &rest[end + 1..];
            }
            out.push_str(rest);
            out
        }
        Some((kind, _)) => panic!("!{kind} dimension values are not simulated"),
        None => v.as_str().expect("a dimension value").to_string(),
    }
}

type Dimensions = BTreeMap<String, String>;

/// Per-minute Sum datapoints, keyed by metric name and exact dimension set, as Lambda publishes
/// them for invocations through an alias: by function, by alias, and by alias + executed version.
#[derive(Default)]
struct Metrics {
    minutes: usize,
    series: BTreeMap<(String, Dimensions), Vec<Option<f64>>>,
}

impl Metrics {
    fn new(minutes: usize) -> Self {
        Metrics {
            minutes,
            ..Default::default()
        }
    }

    fn add(&mut self, metric: &str, dims: &[(&str, String)], minute: usize, value: f64) {
        let key = (
            metric.to_string(),
            dims.iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        );
        let series = self
            .series
            .entry(key)
            .or_insert_with(|| vec![None; self.minutes]);
        *series[minute].get_or_insert(0.0) += value;
    }

    /// `invocations` of `version` through the live alias in each minute from `from`, `errors` of
    /// them failed. Lambda publishes Errors (0 included) with every invocation, Invocations only
    /// when non-zero.
    fn traffic(
        &mut self,
        function: &str,
        version: &str,
        from: usize,
        invocations: u32,
        errors: u32,
    ) {
        let name = physical(function);
        let alias = format!("{name}:live");
        for minute in from..self.minutes {
            for dims in [
                vec![("FunctionName", name.clone())],
                vec![("FunctionName", name.clone()), ("Resource", alias.clone())],
                vec![
                    ("FunctionName", name.clone()),
                    ("Resource", alias.clone()),
                    ("ExecutedVersion", version.to_string()),
                ],
            ] {
                if invocations > 0 {
                    self.add("Invocations", &dims, minute, f64::from(invocations));
                    self.add("Errors", &dims, minute, f64::from(errors));
                }
            }
        }
    }

    /// A burst above the function's concurrency: throttles, published by function name.
    fn throttles(&mut self, function: &str, per_minute: u32) {
        for minute in 0..self.minutes {
            let dims = [("FunctionName", physical(function))];
            self.add("Throttles", &dims, minute, f64::from(per_minute));
        }
    }

    /// One metric's datapoints at the alarm's period (Sum of the minutes in each period).
    fn query(&self, metric: &Value, stat: &str, period: u64) -> Vec<Option<f64>> {
        assert_eq!(metric["Namespace"].as_str(), Some("AWS/Lambda"));
        assert_eq!(stat, "Sum", "only Sum is simulated");
        assert_eq!(period % 60, 0, "periods are whole minutes");
        let dims: Dimensions = metric["Dimensions"]
            .as_sequence()
            .expect("Dimensions")
            .iter()
            .map(|d| {
                (
                    d["Name"].as_str().unwrap().to_string(),
                    resolve(&d["Value"]),
                )
            })
            .collect();
        let name = metric["MetricName"].as_str().unwrap().to_string();
        let minutes = self
            .series
            .get(&(name, dims))
            .cloned()
            .unwrap_or_else(|| vec![None; self.minutes]);
        minutes
            .chunks(period as usize / 60)
            .map(|chunk| chunk.iter().flatten().copied().reduce(|a, b| a + b))
            .collect()
    }
}

// ---------------------------------------------------------------- metric math (the subset used)

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Ident(String),
    Op(String),
    Open,
    Close,
    Comma,
}

fn tokens(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || c == '.' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            out.push(Token::Number(number.parse().unwrap()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Ident(chars[start..i].iter().collect()));
        } else if c == '(' {
            out.push(Token::Open);
            i += 1;
        } else if c == ')' {
            out.push(Token::Close);
            i += 1;
        } else if c == ',' {
            out.push(Token::Comma);
            i += 1;
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = if [">=", "<=", "==", "!="].contains(&two.as_str()) {
                two
            } else {
                c.to_string()
            };
            i += op.len();
            out.push(Token::Op(op));
        }
    }
    out
}

/// Evaluates an expression at one datapoint; a missing input makes the result missing.
struct Eval<'a> {
    tokens: Vec<Token>,
    at: usize,
    values: &'a BTreeMap<String, Option<f64>>,
}

impl Eval<'_> {
    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn peek_op(&self, ops: &[&str]) -> Option<String> {
        match self.tokens.get(self.at) {
            Some(Token::Op(op)) if ops.contains(&op.as_str()) => Some(op.clone()),
            _ => None,
        }
    }

    fn expr(&mut self) -> Option<f64> {
        let left = self.sum();
        let Some(op) = self.peek_op(&[">=", "<=", ">", "<", "==", "!="]) else {
            return left;
        };
        self.at += 1;
        let right = self.sum();
        let (l, r) = (left?, right?);
        let holds = match op.as_str() {
            ">=" => l >= r,
            "<=" => l <= r,
            ">" => l > r,
            "<" => l < r,
            "==" => l == r,
            _ => l != r,
        };
        Some(if holds { 1.0 } else { 0.0 })
    }

    fn sum(&mut self) -> Option<f64> {
        let mut value = self.product();
        while let Some(op) = self.peek_op(&["+", "-"]) {
            self.at += 1;
            let right = self.product();
            value = match (value, right) {
                (Some(l), Some(r)) if op == "+" => Some(l + r),
                (Some(l), Some(r)) => Some(l - r),
                _ => None,
            };
        }
        value
    }

    fn product(&mut self) -> Option<f64> {
        let mut value = self.atom();
        while let Some(op) = self.peek_op(&["*", "/"]) {
            self.at += 1;
            let right = self.atom();
            value = match (value, right) {
                (Some(l), Some(r)) if op == "*" => Some(l * r),
                (Some(_), Some(0.0)) => None,
                (Some(l), Some(r)) => Some(l / r),
                _ => None,
            };
        }
        value
    }

    fn atom(&mut self) -> Option<f64> {
        match self.next() {
            Some(Token::Number(n)) => Some(n),
            Some(Token::Open) => {
                let v = self.expr();
                assert_eq!(self.next(), Some(Token::Close));
                v
            }
            Some(Token::Ident(name)) if name == "IF" => {
                assert_eq!(self.next(), Some(Token::Open));
                let condition = self.expr();
                assert_eq!(self.next(), Some(Token::Comma));
                let then = self.expr();
                assert_eq!(self.next(), Some(Token::Comma));
                let otherwise = self.expr();
                assert_eq!(self.next(), Some(Token::Close));
                match condition? {
                    c if c != 0.0 => then,
                    _ => otherwise,
                }
            }
            Some(Token::Ident(name)) => *self
                .values
                .get(&name)
                .unwrap_or_else(|| panic!("{name} is not a metric of the alarm")),
            other => panic!("unexpected {other:?} in the expression"),
        }
    }
}

/// The alarm's datapoints, one a period: its single metric, or its one expression that
/// returns data.
fn datapoints(props: &Value, metrics: &Metrics) -> Vec<Option<f64>> {
    if let Some(queries) = props["Metrics"].as_sequence() {
        let mut series = BTreeMap::new();
        let mut expression = None;
        for q in queries {
            let id = q["Id"].as_str().unwrap().to_string();
            if let Some(e) = q["Expression"].as_str() {
                assert_eq!(q["ReturnData"].as_bool(), Some(true), "{id}");
                assert!(expression.is_none(), "one expression returns data");
                expression = Some(e.to_string());
            } else {
                assert_eq!(q["ReturnData"].as_bool(), Some(false), "{id}");
                let stat = &q["MetricStat"];
                let period = stat["Period"].as_u64().unwrap();
                let points = metrics.query(&stat["Metric"], stat["Stat"].as_str().unwrap(), period);
                series.insert(id, points);
            }
        }
        let expression = expression.expect("an expression");
        let periods = series.values().map(Vec::len).max().unwrap_or(0);
        (0..periods)
            .map(|i| {
                let values: BTreeMap<String, Option<f64>> = series
                    .iter()
                    .map(|(id, points)| (id.clone(), points[i]))
                    .collect();
                let mut eval = Eval {
                    tokens: tokens(&expression),
                    at: 0,
                    values: &values,
                };
                let v = eval.expr();
                assert_eq!(eval.at, eval.tokens.len(), "{expression}: trailing input");
                v
            })
            .collect()
    } else {
        metrics.query(
            props,
            props["Statistic"].as_str().unwrap(),
            props["Period"].as_u64().unwrap(),
        )
    }
}

/// Whether the alarm goes to ALARM at any evaluation within the simulated minutes.
fn fires(alarm: &Value, metrics: &Metrics) -> bool {
    let props = &alarm["Properties"];
    let points = datapoints(props, metrics);
    let threshold = props["Threshold"].as_f64().expect("Threshold");
    let n = props["EvaluationPeriods"].as_u64().unwrap() as usize;
    let m = props["DatapointsToAlarm"]
        .as_u64()
        .map_or(n, |m| m as usize);
    let missing_breaches = match props["TreatMissingData"].as_str() {
        Some("notBreaching") => false,
        Some("breaching") => true,
        other => panic!("TreatMissingData {other:?} is not simulated"),
    };
    let breaching: Vec<bool> = points
        .iter()
        .map(|p| match p {
            None => missing_breaches,
            Some(v) => match props["ComparisonOperator"].as_str().unwrap() {
                "GreaterThanThreshold" => *v > threshold,
                "GreaterThanOrEqualToThreshold" => *v >= threshold,
                "LessThanThreshold" => *v < threshold,
                "LessThanOrEqualToThreshold" => *v <= threshold,
                other => panic!("{other} is not simulated"),
            },
        })
        .collect();
    (1..=breaching.len()).any(|end| {
        let window = &breaching[end.saturating_sub(n)..end];
        window.iter().filter(|b| **b).count() >= m
    })
}

/// Each function with its canary's length in minutes and its rollout alarms.
fn rollouts(t: &Value) -> Vec<(String, usize, Vec<String>)> {
    let mut out = Vec::new();
    for (id, r) in t["Resources"].as_mapping().unwrap() {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap().to_string();
        let preference = &r["Properties"]["DeploymentPreference"];
        let kind = preference["Type"]
            .as_str()
            .expect("DeploymentPreference Type");
        // CanaryXPercentYMinutes: the new version takes X% for Y minutes.
        let minutes: usize = kind
            .strip_prefix("Canary")
            .and_then(|rest| rest.split_once("Percent"))
            .and_then(|(_, rest)| rest.strip_suffix("Minutes"))
            .and_then(|m| m.parse().ok())
            .unwrap_or_else(|| panic!("{id}: {kind} is not a canary"));
        let alarms = preference["Alarms"]
            .as_sequence()
            .expect("rollout alarms")
            .iter()
            .map(|a| tag(a).expect("!Ref alarm").1)
            .collect();
        out.push((id, minutes, alarms));
    }
    out
}

#[test]
fn rollout_alarms_watch_the_new_version_behind_the_live_alias() {
    let t = template();
    let rollouts = rollouts(&t);
    // Every function is rolled out gradually (the Globals publish the `live` alias for all).
    let functions = t["Resources"]
        .as_mapping()
        .expect("Resources")
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .count();
    assert_eq!(rollouts.len(), functions);
    for (function, _, alarms) in &rollouts {
        assert!(!alarms.is_empty(), "{function}: no rollout alarm");
        for alarm in alarms {
            let props = &t["Resources"][alarm.as_str()]["Properties"];
            assert!(
                props["MetricName"].is_null(),
                "{alarm}: a single metric on the function name judges every version"
            );
            let queries = props["Metrics"].as_sequence().expect("metric math");
            for q in queries.iter().filter(|q| !q["MetricStat"].is_null()) {
                let metric = &q["MetricStat"]["Metric"];
                let dims: BTreeMap<&str, &Value> = metric["Dimensions"]
                    .as_sequence()
                    .unwrap()
                    .iter()
                    .map(|d| (d["Name"].as_str().unwrap(), &d["Value"]))
                    .collect();
                let expected: BTreeMap<&str, (String, String)> = BTreeMap::from([
                    ("FunctionName", ("Ref".into(), function.clone())),
                    ("Resource", ("Sub".into(), format!("${{{function}}}:live"))),
                    (
                        "ExecutedVersion",
                        ("GetAtt".into(), format!("{function}.Version.Version")),
                    ),
                ]);
                let found: BTreeMap<&str, (String, String)> = dims
                    .iter()
                    .map(|(k, v)| (*k, tag(v).unwrap_or_default()))
                    .collect();
                assert_eq!(found, expected, "{alarm}: {:?}", metric["MetricName"]);
            }
        }
        // The operational alarms on the function name stay, outside the rollout.
        for operational in ["ErrorsAlarm", "ThrottlesAlarm"] {
            let name = format!("{}{operational}", function.trim_end_matches("Function"));
            assert!(!t["Resources"][name.as_str()].is_null(), "{name} is gone");
            assert!(!alarms.contains(&name), "{name} gates the rollout");
        }
    }
    // As CloudFormation runs it: the version the alarm watches is the one the alias moves to.
    let run = std::process::Command::new(workspace_root().join(".venv/bin/python"))
        .arg(workspace_root().join("tools/local_stack.py"))
        .arg("translate")
        .output()
        .expect("run local_stack.py translate");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let translated: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();
    let resources = translated["Resources"].as_object().unwrap();
    for (function, _, alarms) in &rollouts {
        let alias = resources
            .values()
            .find(|r| {
                r["Type"] == "AWS::Lambda::Alias"
                    && r["Properties"]["FunctionName"]["Ref"] == function.as_str()
            })
            .unwrap_or_else(|| panic!("{function}: no alias"));
        let version = &alias["Properties"]["FunctionVersion"];
        assert!(version["Fn::GetAtt"].is_array(), "{version}");
        for alarm in alarms {
            for q in resources[alarm.as_str()]["Properties"]["Metrics"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|q| !q["MetricStat"].is_null())
            {
                let executed = q["MetricStat"]["Metric"]["Dimensions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|d| d["Name"] == "ExecutedVersion")
                    .unwrap();
                assert_eq!(&executed["Value"], version, "{alarm}");
            }
        }
    }
}

#[test]
fn rollout_alarms_ignore_normal_behaviour_and_stop_a_broken_version_within_the_canary() {
    let t = template();
    for (function, minutes, alarms) in rollouts(&t) {
        let (old, new) = (old_version(&function), new_version(&function));
        let gate = |metrics: &Metrics| {
            alarms
                .iter()
                .any(|a| fires(&t["Resources"][a.as_str()], metrics))
        };
        // The canary's 10%: the old version fails a third of its invocations (a bad dependency,
        // not the release), and bursts above the concurrency are throttled.
        let mut m = Metrics::new(minutes);
        m.traffic(&function, &old, 0, 900, 300);
        m.traffic(&function, &new, 0, 100, 0);
        m.throttles(&function, 50);
        assert!(
            !gate(&m),
            "{function}: the old version's failures roll back the new one"
        );
        // The operational alarm on the function name does fire on that traffic: the reason it is
        // kept out of the rollout.
        let operational = format!("{}ErrorsAlarm", function.trim_end_matches("Function"));
        assert!(fires(&t["Resources"][operational.as_str()], &m));

        // Transient failures the function or its caller retries: 2% all along, and a one-minute
        // dependency blip failing 30%.
        let mut m = Metrics::new(minutes);
        m.traffic(&function, &new, 0, 100, 2);
        m.add(
            "Errors",
            &[
                ("FunctionName", physical(&function)),
                ("Resource", format!("{}:live", physical(&function))),
                ("ExecutedVersion", new.clone()),
            ],
            minutes / 2,
            28.0,
        );
        assert!(!gate(&m), "{function}: transient, retried errors roll back");

        // A quiet hour: one failure in three invocations is no verdict.
        let mut m = Metrics::new(minutes);
        m.traffic(&function, &new, 0, 3, 1);
        assert!(
            !gate(&m),
            "{function}: one failure in three invocations rolls back"
        );

        // A broken release failing half of its invocations is rolled back before the canary
        // ends, and so is one failing everything at a modest rate.
        for (invocations, errors) in [(40, 20), (25, 25)] {
            let mut m = Metrics::new(minutes);
            m.traffic(&function, &old, 0, 400, 0);
            m.traffic(&function, &new, 0, invocations, errors);
            assert!(
                gate(&m),
                "{function}: {errors} of {invocations} invocations a minute failing is not \
                 rolled back within the {minutes}-minute canary"
            );
        }
    }
}
