//! The operations dashboard (`OperationsDashboard` in template.yaml), generated: the business
//! metrics from the metric catalogue (names, units, dimensions, which function emits them), the
//! functions and alarms from the template, AWS's own metrics for the queues and the API. The
//! template holds the generated body; `stack/template.rs` fails when it is stale, and `make
//! dashboard` rewrites it.

use serde_yaml::Value;
use telemetry::metric_catalog::{MetricSpec, CATALOG, REASON, ROUTE, STATUS_CLASS};
use telemetry::METRICS_NAMESPACE;

use crate::template::{functions, resources};

/// JSON whose objects keep the order they are written in, printed as template.yaml holds it.
#[derive(Clone)]
enum Json {
    Obj(Vec<(&'static str, Json)>),
    Arr(Vec<Json>),
    Str(String),
    Int(i64),
}

fn s(text: impl Into<String>) -> Json {
    Json::Str(text.into())
}

impl Json {
    fn write(&self, depth: usize, out: &mut String) {
        let pad = |d: usize| " ".repeat(d);
        match self {
            Json::Str(text) => out.push_str(&serde_json::Value::String(text.clone()).to_string()),
            Json::Int(n) => out.push_str(&n.to_string()),
            Json::Arr(items) if items.is_empty() => out.push_str("[]"),
            Json::Arr(items) => {
                out.push_str("[\n");
                for (i, item) in items.iter().enumerate() {
                    out.push_str(&pad(depth + 1));
                    item.write(depth + 1, out);
                    out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push(']');
            }
            Json::Obj(fields) => {
                out.push_str("{\n");
                for (i, (key, value)) in fields.iter().enumerate() {
                    out.push_str(&format!("{}\"{key}\": ", pad(depth + 1)));
                    value.write(depth + 1, out);
                    out.push_str(if i + 1 < fields.len() { ",\n" } else { "\n" });
                }
                out.push_str(&pad(depth));
                out.push('}');
            }
        }
    }
}

/// The values drawn, one line each, for a dimension of a business metric.
fn dimension_values(metric: &str, dimension: &str) -> &'static [&'static str] {
    match (metric, dimension) {
        ("OrdersCancelled", REASON) => &["INSUFFICIENT_INVENTORY"],
        ("MessagesParked", REASON) => &["INVALID_JSON", "INVALID_ORDER", "ORDER_ID_REUSED"],
        ("OrdersReleased", REASON) => &["PAYMENT_FAILED", "PAYMENT_TIMEOUT"],
        ("SettlementMessagesFailed", REASON) => &["INVALID_MESSAGE", "DEPENDENCY", "EARLY_EXPIRY"],
        ("ImagesSkipped", REASON) => &[
            "UNSUPPORTED_FORMAT",
            "TRUNCATED",
            "CORRUPT",
            "TOO_MANY_PIXELS",
            "TOO_MANY_PIXELS_PER_BYTE",
            "TOO_LARGE",
            "MALFORMED_RECORD",
            "REJECTED",
        ],
        (_, ROUTE) => &["/users", "/users/{id}"],
        (_, STATUS_CLASS) => &["2xx", "4xx", "5xx"],
        (metric, dimension) => panic!("the dashboard knows no values of {metric}'s {dimension}"),
    }
}

/// One line per combination of the metric's dimension values, with `options` (stat, axis) if any.
fn business_lines(spec: &MetricSpec, service: &str, options: Option<Json>) -> Vec<Json> {
    let mut combinations: Vec<Vec<(&str, &str)>> = vec![Vec::new()];
    for dimension in spec.dimensions {
        combinations = combinations
            .into_iter()
            .flat_map(|prefix| {
                dimension_values(spec.name, dimension).iter().map(move |v| {
                    let mut next = prefix.clone();
                    next.push((*dimension, *v));
                    next
                })
            })
            .collect();
    }
    combinations
        .into_iter()
        .map(|pairs| {
            let mut line = vec![s(METRICS_NAMESPACE), s(spec.name), s("service"), s(service)];
            for (name, value) in pairs {
                line.extend([s(name), s(value)]);
            }
            if let Some(options) = &options {
                line.push(options.clone());
            }
            Json::Arr(line)
        })
        .collect()
}

fn stat(name: &str) -> Json {
    Json::Obj(vec![("stat", s(name))])
}

/// The catalogue's metrics of these functions with this unit, in catalogue order.
fn catalogued<'a>(
    services: &'a [&str],
    unit: &'a str,
) -> impl Iterator<Item = &'static MetricSpec> + 'a {
    CATALOG
        .iter()
        .filter(move |m| services.contains(&m.emitted_by) && m.unit == unit)
}

fn business(services: &[&str], unit: &str) -> Vec<Json> {
    catalogued(services, unit)
        .flat_map(|m| business_lines(m, m.emitted_by, None))
        .collect()
}

fn queue(metric: &str, queue: &str) -> Json {
    Json::Arr(vec![
        s("AWS/SQS"),
        s(metric),
        s("QueueName"),
        s(format!("${{{queue}.QueueName}}")),
        stat("Maximum"),
    ])
}

fn api(metric: &str) -> Json {
    Json::Arr(vec![
        s("AWS/ApiGateway"),
        s(metric),
        s("ApiId"),
        s("${UsersApi}"),
        s("Stage"),
        s("${Stage}"),
    ])
}

fn lambda(metric: &str, function: &str, options: Option<Json>) -> Json {
    let mut line = vec![
        s("AWS/Lambda"),
        s(metric),
        s("FunctionName"),
        s(format!("${{{function}}}")),
    ];
    line.extend(options);
    Json::Arr(line)
}

/// The dashboard body (the `!Sub` text of `DashboardBody`) for this template.
pub fn body(t: &Value) -> String {
    let alarms: Vec<Json> = resources(t)
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::CloudWatch::Alarm"))
        .filter_map(|(id, _)| id.as_str())
        .map(|id| s(format!("${{{id}.Arn}}")))
        .collect();
    let fns = functions(t);
    let orders = ["order-processor", "order-settlement"];
    let images = ["image-compressor"];
    let users = ["user-api"];

    let mut order_queues: Vec<Json> = [
        "OrdersQueue",
        "OrdersDeadLetterQueue",
        "PaymentQueue",
        "PaymentDeadLetterQueue",
        "PaymentResultsQueue",
        "PaymentResultsDeadLetterQueue",
        "ExpiryQueue",
        "ExpiryDeadLetterQueue",
    ]
    .iter()
    .map(|q| queue("ApproximateNumberOfMessagesVisible", q))
    .collect();
    order_queues.push(queue("ApproximateNumberOfMessagesDelayed", "ExpiryQueue"));
    order_queues.extend(
        ["PaymentResultsQueue", "OrdersQueue"]
            .iter()
            .map(|q| queue("ApproximateAgeOfOldestMessage", q)),
    );

    let mut image_counts = business(&images, "Count");
    image_counts.push(queue(
        "ApproximateNumberOfMessagesVisible",
        "ImageFailureQueue",
    ));

    let mut image_sizes = business(&images, "Bytes");
    for m in catalogued(&images, "Milliseconds") {
        for percentile in ["p50", "p99"] {
            let options = Json::Obj(vec![("stat", s(percentile)), ("yAxis", s("right"))]);
            image_sizes.extend(business_lines(m, m.emitted_by, Some(options)));
        }
    }

    let mut api_requests = business(&users, "Count");
    api_requests.push(api("5xx"));
    let mut api_latency = business(&users, "Milliseconds");
    api_latency.push(api("Latency"));

    let mut errors = Vec::new();
    let mut durations = Vec::new();
    let mut cold_starts = Vec::new();
    let cold_start = CATALOG
        .iter()
        .find(|m| m.name == telemetry::metric_catalog::COLD_START)
        .expect("ColdStart is catalogued");
    for f in &fns {
        errors.push(lambda("Errors", &f.id, None));
        errors.push(lambda("Throttles", &f.id, None));
        durations.push(lambda("Duration", &f.id, Some(stat("p99"))));
        cold_starts.extend(business_lines(cold_start, &f.binary, None));
    }
    durations.extend(cold_starts);

    let charts: Vec<(&str, &str, Vec<Json>)> = vec![
        ("Orders", "Sum", business(&orders, "Count")),
        ("Order queues: depth and age", "Sum", order_queues),
        ("Images", "Sum", image_counts),
        (
            "Image bytes in and out, processing time",
            "Sum",
            image_sizes,
        ),
        (
            "Users API: requests by route and status",
            "Sum",
            api_requests,
        ),
        ("Users API: latency p99", "p99", api_latency),
        ("Functions: errors and throttles", "Sum", errors),
        ("Functions: duration p99 and cold starts", "Sum", durations),
    ];

    let mut widgets = vec![Json::Obj(vec![
        ("type", s("alarm")),
        ("x", Json::Int(0)),
        ("y", Json::Int(0)),
        ("width", Json::Int(24)),
        ("height", Json::Int(4)),
        (
            "properties",
            Json::Obj(vec![("title", s("Alarms")), ("alarms", Json::Arr(alarms))]),
        ),
    ])];
    for (i, (title, statistic, metrics)) in charts.into_iter().enumerate() {
        let i = i as i64;
        widgets.push(Json::Obj(vec![
            ("type", s("metric")),
            ("x", Json::Int((i % 2) * 12)),
            ("y", Json::Int(4 + (i / 2) * 6)),
            ("width", Json::Int(12)),
            ("height", Json::Int(6)),
            (
                "properties",
                Json::Obj(vec![
                    ("title", s(title)),
                    ("region", s("${AWS::Region}")),
                    ("stat", s(statistic)),
                    ("period", Json::Int(300)),
                    ("view", s("timeSeries")),
                    ("metrics", Json::Arr(metrics)),
                ]),
            ),
        ]));
    }
    let mut out = String::new();
    Json::Obj(vec![("widgets", Json::Arr(widgets))]).write(0, &mut out);
    out.push('\n');
    out
}

const BODY_START: &str = "      DashboardBody: !Sub |\n";
const BODY_INDENT: &str = "        ";

/// The dashboard body as template.yaml holds it (its block scalar, unindented).
pub fn body_in(template_text: &str) -> Option<String> {
    let start = template_text.find(BODY_START)? + BODY_START.len();
    let mut body = String::new();
    for line in template_text[start..].split_inclusive('\n') {
        match line.strip_prefix(BODY_INDENT) {
            Some(rest) => body.push_str(rest),
            None if line.trim().is_empty() => body.push('\n'),
            None => break,
        }
    }
    Some(body.trim_end().to_string() + "\n")
}

/// template.yaml's text with its dashboard body replaced by `body`.
pub fn with_body(template_text: &str, body: &str) -> Option<String> {
    let start = template_text.find(BODY_START)? + BODY_START.len();
    let mut end = start;
    for line in template_text[start..].split_inclusive('\n') {
        if line.starts_with(BODY_INDENT) {
            end += line.len();
        } else {
            break;
        }
    }
    let indented: String = body
        .lines()
        .map(|l| format!("{BODY_INDENT}{l}\n"))
        .collect();
    Some(format!(
        "{}{indented}{}",
        &template_text[..start],
        &template_text[end..]
    ))
}
