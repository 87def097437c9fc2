//! The memory budget holds in the deployed regime: every test and corpus file goes through the
//! real pipeline in a child process whose memory is limited to the function's `MemorySize` from
//! template.yaml, configured from the template's environment as Lambda would configure it, and
//! either gives its variants or is refused with a reason. None is killed, none aborts on a failed
//! allocation.
//!
//! The child is this test binary run again (`child_processes_one_file`), shaped like the function:
//! the allocator settings of `main`, a current-thread tokio runtime, the object's bytes read into
//! memory first, the pipeline on the blocking pool.
//!
//! Its limit is `RLIMIT_DATA`, set between fork and exec: every private writable mapping counts
//! against it, so every allocation of the Rust code and of the C decoders (heap, arenas as they
//! grow, buffers mapped on their own, thread stacks), and a zeroed buffer counts whole before a page
//! of it is touched (Lambda counts only the pages in use: stricter here). `RLIMIT_AS` would also
//! count what is only reserved: of the child's 219 MiB of address space before any image, 127 MiB
//! are two glibc arenas' inaccessible reservations and 20 MiB the test executable's code, against
//! 5 MiB of data; limited that way, the child would be refused memory Lambda grants.
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use image_compressor::allocator::keep_freed_memory;
use image_compressor::pipeline::{compress_image, PipelineConfig};
use serde_yaml::Value;
use settings::Env;

/// The file the child processes (set only for the child).
const CHILD_FILE: &str = "IMAGE_MEMORY_LIMIT_CHILD_FILE";
/// The environment the child configures its pipeline from, as `NAME=value` lines.
const CHILD_ENV: &str = "IMAGE_MEMORY_LIMIT_CHILD_ENV";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The image-compressor function's `MemorySize` (MB) and the environment Lambda gives it: the
/// template's literals and parameter defaults, and `AWS_LAMBDA_FUNCTION_MEMORY_SIZE`.
fn deployed() -> (u64, BTreeMap<String, String>) {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let template: Value = serde_yaml::from_str(&text).unwrap();
    let function = &template["Resources"]["ImageCompressorFunction"]["Properties"];
    let memory = function["MemorySize"]
        .as_u64()
        .expect("ImageCompressorFunction has a MemorySize");
    let mut env = BTreeMap::new();
    for (name, value) in function["Environment"]["Variables"].as_mapping().unwrap() {
        let name = name.as_str().unwrap().to_string();
        let value = match value {
            Value::Tagged(tagged) if tagged.tag.to_string().trim_start_matches('!') == "Ref" => {
                let parameter = tagged.value.as_str().unwrap_or_default();
                match &template["Parameters"][parameter]["Default"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => continue,
                }
            }
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => continue,
        };
        env.insert(name, value);
    }
    env.insert("AWS_LAMBDA_FUNCTION_MEMORY_SIZE".into(), memory.to_string());
    (memory, env)
}

/// What became of one file in its child process.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Variants,
    Refused(String),
    /// Killed by a signal, aborted, or ended without a result.
    Died(String),
}

fn run_child(file: &Path, env: &str, limit_bytes: u64) -> (Outcome, String) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--exact",
            "child_processes_one_file",
            "--ignored",
            "--test-threads=1",
            "--nocapture",
            "--quiet",
        ])
        .env(CHILD_FILE, file)
        .env(CHILD_ENV, env);
    let limit = libc::rlimit {
        rlim_cur: limit_bytes,
        rlim_max: limit_bytes,
    };
    // SAFETY: between fork and exec the closure only calls setrlimit, which is async-signal-safe,
    // on a value built before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_DATA, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let result = stdout
        .lines()
        .find_map(|line| line.strip_prefix("RESULT "))
        .map(str::to_string);
    let outcome = match (&result, output.status.success()) {
        (Some(result), true) if result.starts_with("variants") => Outcome::Variants,
        (Some(result), true) if result.starts_with("refused ") => Outcome::Refused(
            result["refused ".len()..]
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
        _ => {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let why = stderr
                .lines()
                .find(|l| l.contains("memory allocation") || l.contains("panicked"))
                .or(stderr.lines().last())
                .unwrap_or_default();
            Outcome::Died(format!("{:?}: {why}", output.status))
        }
    };
    (outcome, result.unwrap_or_default())
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && !p.extension().is_some_and(|e| e == "md" || e == "py"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_file_gets_variants_or_a_reason_within_the_deployed_memory() {
    let (memory_mb, env) = deployed();
    let limit = memory_mb << 20;
    let env_lines: String = env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let groups = [
        ("good", files(&testdata.join("good"))),
        ("bad", files(&testdata.join("bad"))),
        ("corpus", files(&root().join("bench/corpus"))),
    ];
    let jobs: Vec<(&str, PathBuf)> = groups
        .iter()
        .flat_map(|(group, files)| files.iter().map(move |f| (*group, f.clone())))
        .collect();
    assert!(jobs.len() > 80, "{} files", jobs.len());
    // Two children at a time.
    let results: Vec<(&str, PathBuf, Outcome, String)> = std::thread::scope(|scope| {
        let (first, second) = jobs.split_at(jobs.len() / 2);
        let handles: Vec<_> = [first, second]
            .into_iter()
            .map(|half| {
                let env_lines = &env_lines;
                scope.spawn(move || {
                    half.iter()
                        .map(|(group, file)| {
                            let (outcome, line) = run_child(file, env_lines, limit);
                            (*group, file.clone(), outcome, line)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let mut failures = Vec::new();
    let mut report = std::io::stderr().lock();
    for (group, file, outcome, line) in &results {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        writeln!(report, "{group}/{name}: {line}").unwrap();
        let expected = match name.as_str() {
            "tiff-deflate-8184x8184-rgba16.tif" | "webp-animated-9000x9000-lossless.webp" => {
                Some("IMAGE_TOO_LARGE_FOR_MEMORY")
            }
            "gif-1x1-screen-23000x23000-frame.gif" => Some("TOO_MANY_PIXELS"),
            _ => None,
        };
        let fine = match (outcome, *group) {
            (Outcome::Died(_), _) => false,
            (Outcome::Refused(code), _) if code == "DECODER_PANIC" => false,
            (outcome, _) if expected.is_some() => {
                *outcome == Outcome::Refused(expected.unwrap_or_default().into())
            }
            (outcome, "good") => *outcome == Outcome::Variants,
            (outcome, "bad") => matches!(outcome, Outcome::Refused(_)),
            _ => true,
        };
        if !fine {
            failures.push(format!("{group}/{name}: {outcome:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "under a {memory_mb} MB data limit: {failures:#?}"
    );
}

/// The child side of the test above: does nothing unless started by it.
#[test]
#[ignore = "run by every_file_gets_variants_or_a_reason_within_the_deployed_memory in a child process"]
fn child_processes_one_file() {
    let Some(file) = std::env::var_os(CHILD_FILE) else {
        return;
    };
    let lines = std::env::var(CHILD_ENV).unwrap_or_default();
    let pairs: Vec<(&str, &str)> = lines
        .lines()
        .filter_map(|line| line.split_once('='))
        .collect();
    // As the function's `main` does.
    keep_freed_memory();
    let config = PipelineConfig::from_env(&Env::from_pairs(&pairs)).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let result = runtime.block_on(async move {
        let bytes = std::fs::read(&file).unwrap();
        tokio::task::spawn_blocking(move || compress_image(&bytes, &config))
            .await
            .unwrap()
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let memory = format!(
        "(peak RSS {}, data at the end {}, peak address space {})",
        field("VmHWM:"),
        field("VmData:"),
        field("VmPeak:")
    );
    match result {
        Ok(processed) => println!("RESULT variants {} {memory}", processed.variants.len()),
        Err(e) => println!("RESULT refused {} {e} {memory}", e.code()),
    }
}
