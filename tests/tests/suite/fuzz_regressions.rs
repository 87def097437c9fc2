//! Replays every checked-in fuzz input (seeds and past findings under `fuzz/regressions/`, plus the
//! project's sample events and test images) through the fuzz targets' own bodies, on stable.

#[path = "../../../fuzz/src/lib.rs"]
mod targets;

use std::path::Path;

use integration_tests::workspace_root;

fn inputs(dirs: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut all = Vec::new();
    for dir in dirs {
        let dir = workspace_root().join(dir);
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() && !is_note(&path) {
                let bytes = std::fs::read(&path).expect("readable input");
                all.push((path.display().to_string(), bytes));
            }
        }
    }
    all
}

fn is_note(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "md")
}

fn replay(target: fn(&[u8]), dirs: &[&str]) {
    let inputs = inputs(dirs);
    assert!(!inputs.is_empty(), "no inputs in {dirs:?}");
    for (name, bytes) in &inputs {
        let outcome = std::panic::catch_unwind(|| target(bytes));
        assert!(
            outcome.is_ok(),
            "{name} broke a promise (see the panic above)"
        );
    }
}

#[test]
fn s3_event_inputs() {
    replay(
        targets::s3_event,
        &["fuzz/regressions/s3_event", "events/image-compressor"],
    );
}

#[test]
fn image_pipeline_inputs() {
    replay(
        targets::image_pipeline,
        &[
            "fuzz/regressions/image_pipeline",
            "functions/image-compressor/testdata/bad",
            "functions/image-compressor/testdata/good",
        ],
    );
}

#[test]
fn api_request_inputs() {
    replay(targets::api_request, &["fuzz/regressions/api_request"]);
}

#[test]
fn order_message_inputs() {
    let mut bodies = Vec::new();
    for (name, bytes) in inputs(&["events/order-processor"]) {
        let event: serde_json::Value = serde_json::from_slice(&bytes).expect(&name);
        for record in event["Records"].as_array().into_iter().flatten() {
            bodies.push(record["body"].as_str().unwrap_or_default().to_string());
        }
    }
    assert!(bodies.len() >= 4);
    for body in &bodies {
        targets::order_message(body.as_bytes());
    }
    replay(targets::order_message, &["fuzz/regressions/order_message"]);
}
