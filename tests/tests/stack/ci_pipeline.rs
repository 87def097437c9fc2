//! The GitHub Actions workflows and the deploy role keep their promises: no stored AWS keys (OIDC
//! only), `id-token: write` only where a job assumes the role, prod deployed only after dev and its
//! smoke check and only in the `prod` environment, artifacts built once, pull requests running
//! exactly `make test`, actions pinned to commits, and a deploy role that only these environments'
//! jobs of this repository can assume.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use integration_tests::workspace_root;
use serde_yaml::Value;

const CONFIGURE_CREDENTIALS: &str = "aws-actions/configure-aws-credentials";

fn workflows_dir() -> PathBuf {
    workspace_root().join(".github").join("workflows")
}

/// Every workflow file: (file name, text, parsed).
fn workflows() -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(workflows_dir()).unwrap_or_else(|e| panic!(".github/workflows: {e}"));
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !(name.ends_with(".yml") || name.ends_with(".yaml")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        let parsed: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        out.push((name, text, parsed));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no workflow in .github/workflows");
    out
}

/// The workflow whose triggers include `event`.
fn workflow_on(event: &str) -> (String, Value) {
    let found: Vec<_> = workflows()
        .into_iter()
        .filter(|(_, _, w)| triggers(w).contains(event))
        .map(|(name, _, w)| (name, w))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "exactly one workflow runs on {event}: {:?}",
        found.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    found.into_iter().next().unwrap_or_else(|| unreachable!())
}

fn triggers(w: &Value) -> BTreeSet<String> {
    match &w["on"] {
        Value::String(s) => [s.clone()].into(),
        Value::Sequence(list) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        Value::Mapping(m) => m
            .keys()
            .filter_map(|k| k.as_str().map(str::to_string))
            .collect(),
        _ => BTreeSet::new(),
    }
}

fn jobs(w: &Value) -> BTreeMap<String, Value> {
    w["jobs"]
        .as_mapping()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v.clone())))
        .collect()
}

fn steps(job: &Value) -> Vec<Value> {
    job["steps"].as_sequence().cloned().unwrap_or_default()
}

fn uses(step: &Value) -> Option<&str> {
    step["uses"].as_str()
}

fn runs(job: &Value) -> Vec<String> {
    steps(job)
        .iter()
        .filter_map(|s| s["run"].as_str().map(|r| r.trim().to_string()))
        .collect()
}

fn assumes_a_role(job: &Value) -> bool {
    steps(job)
        .iter()
        .any(|s| uses(s).is_some_and(|u| u.starts_with(CONFIGURE_CREDENTIALS)))
}

fn needs(job: &Value) -> BTreeSet<String> {
    match &job["needs"] {
        Value::String(s) => [s.clone()].into(),
        Value::Sequence(list) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Whether `job` runs after `other`, directly or through the jobs it needs.
fn runs_after(jobs: &BTreeMap<String, Value>, job: &str, other: &str) -> bool {
    let mut seen = BTreeSet::new();
    let mut todo: Vec<String> = jobs
        .get(job)
        .map(|j| needs(j).into_iter().collect())
        .unwrap_or_default();
    while let Some(next) = todo.pop() {
        if next == other {
            return true;
        }
        if seen.insert(next.clone()) {
            todo.extend(jobs.get(&next).map(needs).unwrap_or_default());
        }
    }
    false
}

fn environment(job: &Value) -> Option<&str> {
    job["environment"]
        .as_str()
        .or_else(|| job["environment"]["name"].as_str())
}

/// The job of the deploy workflow that runs in a GitHub environment and deploys with `config_env`.
fn deploy_job(jobs: &BTreeMap<String, Value>, config_env: &str) -> (String, Value) {
    let flag = format!("--config-env {config_env}");
    let found: Vec<_> = jobs
        .iter()
        .filter(|(_, j)| {
            runs(j)
                .iter()
                .any(|r| r.contains("sam deploy") && r.contains(&flag))
        })
        .map(|(k, j)| (k.clone(), j.clone()))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one job runs `sam deploy {flag}`: {:?}",
        found.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    found.into_iter().next().unwrap_or_else(|| unreachable!())
}

#[test]
fn no_workflow_holds_or_reads_aws_keys() {
    for (name, text, w) in workflows() {
        let lower = text.to_lowercase();
        for key in [
            "aws-access-key-id",
            "aws-secret-access-key",
            "aws-session-token",
            "aws_access_key_id",
            "aws_secret_access_key",
            "aws_session_token",
        ] {
            assert!(
                !lower.contains(key),
                "{name} mentions {key}: AWS credentials come only from OIDC"
            );
        }
        for (i, piece) in lower.split("secrets.").enumerate().skip(1) {
            let secret: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            assert!(
                !secret.contains("aws"),
                "{name}: secret #{i} `{secret}` looks like an AWS credential"
            );
        }
        for (job_name, job) in jobs(&w) {
            for step in steps(&job)
                .iter()
                .filter(|s| uses(s).is_some_and(|u| u.starts_with(CONFIGURE_CREDENTIALS)))
            {
                assert!(
                    step["with"]["role-to-assume"]
                        .as_str()
                        .is_some_and(|r| !r.is_empty()),
                    "{name}/{job_name}: assumes a role"
                );
            }
        }
    }
}

#[test]
fn id_token_write_only_on_the_jobs_that_assume_the_role() {
    for (name, _, w) in workflows() {
        assert_ne!(
            w["permissions"]["id-token"].as_str(),
            Some("write"),
            "{name}: not for every job of the workflow"
        );
        assert_ne!(w["permissions"].as_str(), Some("write-all"), "{name}");
        for (job_name, job) in jobs(&w) {
            let writes = job["permissions"]["id-token"].as_str() == Some("write");
            assert_eq!(
                writes,
                assumes_a_role(&job),
                "{name}/{job_name}: id-token: write exactly when the job assumes the deploy role"
            );
        }
    }
    let (name, pr) = workflow_on("pull_request");
    assert!(
        jobs(&pr).values().all(|j| !assumes_a_role(j)),
        "{name}: pull requests never reach AWS"
    );
}

#[test]
fn pull_requests_run_exactly_make_test() {
    let (name, w) = workflow_on("pull_request");
    let jobs = jobs(&w);
    assert_eq!(jobs.len(), 1, "{name}: one job");
    for job in jobs.values() {
        assert_eq!(
            runs(job),
            vec!["make test".to_string()],
            "{name}: the README's one test command, nothing else run"
        );
    }
}

#[test]
fn main_builds_once_then_dev_then_smoke_then_prod_behind_its_environment() {
    let (name, w) = workflow_on("push");
    assert_eq!(
        w["on"]["push"]["branches"]
            .as_sequence()
            .map(|b| b.iter().filter_map(Value::as_str).collect::<Vec<_>>()),
        Some(vec!["main"]),
        "{name}: deploys from main only"
    );
    let jobs = jobs(&w);

    let builders: Vec<_> = jobs
        .iter()
        .filter(|(_, j)| runs(j).iter().any(|r| r.contains("sam build")))
        .map(|(k, _)| k.clone())
        .collect();
    assert_eq!(
        builders.len(),
        1,
        "{name}: the artifacts are built once: {builders:?}"
    );
    let build = &builders[0];
    assert!(
        !assumes_a_role(&jobs[build]),
        "{name}/{build}: building needs no AWS credentials"
    );
    assert!(
        steps(&jobs[build])
            .iter()
            .any(|s| uses(s).is_some_and(|u| u.starts_with("actions/upload-artifact"))),
        "{name}/{build}: uploads what it built"
    );

    let (dev, dev_job) = deploy_job(&jobs, "default");
    let (prod, prod_job) = deploy_job(&jobs, "prod");
    for (job_name, job) in [(&dev, &dev_job), (&prod, &prod_job)] {
        assert!(
            runs_after(&jobs, job_name, build),
            "{name}/{job_name}: deploys the build job's artifacts, after it"
        );
        assert!(
            steps(job)
                .iter()
                .any(|s| uses(s).is_some_and(|u| u.starts_with("actions/download-artifact"))),
            "{name}/{job_name}: downloads them rather than building again"
        );
        assert!(
            assumes_a_role(job),
            "{name}/{job_name}: deploys with the OIDC role"
        );
    }
    assert_eq!(environment(&dev_job), Some("dev"), "{name}/{dev}");

    let smokes: Vec<_> = jobs
        .iter()
        .filter(|(_, j)| {
            runs(j)
                .iter()
                .any(|r| r.contains("tools/smoke_deployed.py"))
        })
        .map(|(k, j)| (k.clone(), j.clone()))
        .collect();
    assert_eq!(smokes.len(), 1, "{name}: one smoke-check job");
    let (smoke, smoke_job) = &smokes[0];
    assert!(
        needs(smoke_job).contains(&dev),
        "{name}/{smoke}: checks the dev deploy, after it"
    );
    assert!(
        runs(smoke_job)
            .iter()
            .any(|r| r.contains("--config-env default")),
        "{name}/{smoke}: checks the stack that {dev} deployed (samconfig's default environment)"
    );
    assert_eq!(environment(smoke_job), Some("dev"), "{name}/{smoke}");

    assert_eq!(
        environment(&prod_job),
        Some("prod"),
        "{name}/{prod}: behind the prod environment's required approval"
    );
    let prod_needs = needs(&prod_job);
    assert!(
        prod_needs.contains(&dev) && prod_needs.contains(smoke),
        "{name}/{prod}: after {dev} and {smoke}: {prod_needs:?}"
    );
    assert_eq!(
        w["concurrency"]["cancel-in-progress"].as_bool(),
        Some(false),
        "{name}: a deploy is never cancelled halfway"
    );
}

#[test]
fn every_action_is_pinned_to_a_full_commit() {
    for (name, _, w) in workflows() {
        for (job_name, job) in jobs(&w) {
            for step in steps(&job) {
                let Some(action) = uses(&step) else { continue };
                let (_, reference) = action
                    .split_once('@')
                    .unwrap_or_else(|| panic!("{name}/{job_name}: {action} has no @ref"));
                assert!(
                    reference.len() == 40 && reference.chars().all(|c| c.is_ascii_hexdigit()),
                    "{name}/{job_name}: {action} is not pinned to a commit SHA"
                );
            }
        }
    }
}

fn tagged(v: &Value) -> Option<(String, &Value)> {
    match v {
        Value::Tagged(t) => Some((
            t.tag.to_string().trim_start_matches('!').to_string(),
            &t.value,
        )),
        _ => None,
    }
}

#[test]
fn the_deploy_role_trusts_only_this_repositorys_environment_jobs_and_passes_only_the_execution_role(
) {
    let path = workspace_root().join("deploy").join("github-oidc.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let t: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));

    let environments: BTreeSet<String> = t["Parameters"]["Environment"]["AllowedValues"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    let (_, w) = workflow_on("push");
    let used: BTreeSet<String> = jobs(&w)
        .values()
        .filter(|j| assumes_a_role(j))
        .filter_map(|j| environment(j).map(str::to_string))
        .collect();
    assert_eq!(
        used, environments,
        "every job that assumes the role runs in one of the template's environments"
    );

    let role = &t["Resources"]["DeployRole"]["Properties"];
    let trust = role["AssumeRolePolicyDocument"]["Statement"]
        .as_sequence()
        .cloned()
        .unwrap_or_default();
    assert_eq!(trust.len(), 1, "one way in");
    assert_eq!(
        trust[0]["Action"].as_str(),
        Some("sts:AssumeRoleWithWebIdentity")
    );
    let equals = &trust[0]["Condition"]["StringEquals"];
    assert_eq!(
        equals["token.actions.githubusercontent.com:aud"].as_str(),
        Some("sts.amazonaws.com")
    );
    let (tag, sub) = tagged(&equals["token.actions.githubusercontent.com:sub"])
        .unwrap_or_else(|| panic!("sub is a !Sub"));
    assert_eq!(tag, "Sub");
    assert_eq!(
        sub.as_str(),
        Some("repo:${GitHubRepository}:environment:${Environment}"),
        "exactly this repository's jobs in this environment (no wildcard)"
    );
    assert!(
        trust[0]["Condition"]["StringLike"].is_null(),
        "no pattern match on the subject"
    );

    let mut passes = Vec::new();
    for policy in role["Policies"].as_sequence().into_iter().flatten() {
        let policy = match tagged(policy) {
            Some((tag, branches)) if tag == "If" => branches[1].clone(),
            _ => policy.clone(),
        };
        for statement in policy["PolicyDocument"]["Statement"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            assert_ne!(
                statement["Resource"].as_str(),
                Some("*"),
                "the deploy role names its resources: {statement:?}"
            );
            let actions: Vec<&str> = match &statement["Action"] {
                Value::String(a) => vec![a.as_str()],
                Value::Sequence(list) => list.iter().filter_map(Value::as_str).collect(),
                _ => vec![],
            };
            assert!(
                actions.iter().all(|a| !a.contains('*')),
                "no wildcard action: {actions:?}"
            );
            if actions.contains(&"iam:PassRole") {
                passes.push(statement["Resource"].clone());
            }
        }
    }
    assert_eq!(passes.len(), 1, "one PassRole grant");
    assert_eq!(
        tagged(&passes[0]).map(|(tag, v)| (tag, v.as_str().map(str::to_string))),
        Some((
            "GetAtt".to_string(),
            Some("CloudFormationExecutionRole.Arn".to_string())
        )),
        "the deploy role hands CloudFormation its execution role, and nothing else"
    );
}

/// The execution role's grants go by the suite stack's name prefix; this template's own roles and
/// bucket stay out of them whatever this stack is called.
#[test]
fn the_execution_role_cannot_reach_the_roles_and_bucket_that_deploy_it() {
    let path = workspace_root().join("deploy").join("github-oidc.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let t: Value = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let resources = &t["Resources"];

    let bucket = tagged(&resources["ArtifactsBucket"]["Properties"]["BucketName"])
        .and_then(|(_, v)| v.as_str().map(str::to_string))
        .unwrap_or_default();
    assert!(
        !bucket.starts_with("${SuiteStackName}"),
        "the artifacts bucket {bucket:?} must not match the execution role's `${{SuiteStackName}}-*` buckets"
    );

    let statements: Vec<Value> = resources["CloudFormationExecutionRole"]["Properties"]["Policies"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_sequence()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let own_roles = statements.iter().any(|s| {
        s["Effect"].as_str() == Some("Deny")
            && s["Action"].as_str() == Some("iam:*")
            && tagged(&s["Resource"])
                .and_then(|(_, v)| v.as_str().map(str::to_string))
                .as_deref()
                == Some("arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-*")
    });
    assert!(own_roles, "a Deny of iam:* on this stack's roles");
}
