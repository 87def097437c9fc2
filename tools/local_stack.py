"""The local stack: template.yaml deployed by CloudFormation into a moto server, with the same SAM
CLI commands a deployment to AWS runs.

    python tools/local_stack.py up [--port 4566] [--build] [--set Param=value]
        start moto (if needed), deploy the stack, write .local/env and .local/stack.json
    python tools/local_stack.py down          stop what `up` and the demo started (by pid files)
    python tools/local_stack.py deploy --endpoint URL --stack NAME --out DIR [--set Param=value]
        deploy into a running emulator (used by tests, the demo and the benchmarks)
    python tools/local_stack.py translate [--template PATH]    the transformed template, as JSON

A deploy is `sam package` (the code to the emulator's S3), the AWS::Serverless transform (run here
with samtranslator, the translator CloudFormation itself uses, because moto's CloudFormation does not
run transforms), and `sam deploy`: a change set, executed, with samconfig.toml's `local`
environment. What the stack holds is then read back from CloudFormation and Lambda: each resource's
physical id (list_stack_resources), the outputs (describe_stacks) and each function's resolved
environment (get_function_configuration), which `cargo lambda watch` runs the functions with.

The emulator cannot run provided.al2023 code (no container runtime), so the deployed code is not
run: `--build` deploys `sam build`'s output, as `make deploy-local` does; otherwise each function is
deployed with a stand-in bootstrap, which keeps a deploy to seconds. Resource types moto cannot
create are left out of the stack and listed (`skipped`); tests pin that list. An output that reads
an attribute (Fn::GetAtt) of such a resource makes moto's CloudFormation fail the whole stack, so
those outputs are left out of the deployed template too and listed (`outputs_left_out`).
"""
import argparse
import copy
import json
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import boto3
import botocore.exceptions
import yaml

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
REGION = "us-east-1"
DEFAULT_PORT = 4566
DEFAULT_STACK = "rust-suite-local"


class CfnLoader(yaml.SafeLoader):
    """YAML loader that keeps CloudFormation short-form tags as {"Fn": value} dictionaries."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    name = suffix if suffix in ("Ref", "Condition") else "Fn::" + suffix
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)
# The translator warns about its own feature flags on every run.
logging.getLogger("samtranslator").setLevel(logging.ERROR)


def load_template(path=ROOT / "template.yaml"):
    with open(path) as f:
        return yaml.load(f, Loader=CfnLoader)


SAMCONFIG_ENV = "local"
BUILT_TEMPLATE = ROOT / ".aws-sam" / "build" / "template.yaml"
# A deployed function's code is not run by the emulator (it cannot run provided.al2023 without
# Docker): the functions run under `cargo lambda watch`. When no `sam build` output is given, each
# function is deployed with this stand-in, so that the stack can be created in seconds.
PLACEHOLDER = "#!/bin/sh\necho 'this function runs locally: make watch' >&2\nexit 1\n"


def sam_env(endpoint):
    """The SAM CLI (boto3) pointed at the emulator: endpoint, test credentials, path-style S3."""
    config = ROOT / "target" / "stacks" / "aws-config"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f"[default]\nregion = {REGION}\ns3 =\n    addressing_style = path\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({
        # The stack's template is uploaded to S3 and named to CloudFormation by URL; the emulator
        # reads a path-style URL (bucket in the path) only when its host is `localhost`.
        "AWS_ENDPOINT_URL": endpoint.replace("://127.0.0.1:", "://localhost:"),
        "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_CONFIG_FILE": str(config),
        "SAM_CLI_TELEMETRY": "0", "SAM_CLI_POLL_DELAY": "0.5",
    })
    return env


def sam(args, endpoint, echo):
    """Runs the SAM CLI from the project's venv; returns its output, raising with it on failure.
    echo: show the output as it comes (a build takes minutes)."""
    command = [str(Path(sys.executable).parent / "sam"), *args]
    proc = subprocess.Popen(command, cwd=ROOT, env=sam_env(endpoint), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if echo:
            print(line, end="", flush=True)
    output = "".join(lines)
    if proc.wait() != 0:
        raise RuntimeError(f"`sam {' '.join(args)}` failed ({proc.returncode}):\n{output}")
    return output


def samconfig(section):
    with open(ROOT / "samconfig.toml", "rb") as f:
        return tomllib.load(f)[SAMCONFIG_ENV][section]["parameters"]


def parse_overrides(text):
    return dict(item.split("=", 1) for item in shlex.split(text or ""))


def placeholder_template(work):
    """template.yaml with every function's code replaced by the stand-in; nothing else changes."""
    code = work / "placeholder-code"
    code.mkdir(parents=True, exist_ok=True)
    bootstrap = code / "bootstrap"
    bootstrap.write_text(PLACEHOLDER)
    bootstrap.chmod(0o755)
    # The artifact's S3 key is a hash of its zip, which holds the file's time: a fixed time keeps
    # the key, the function's version and so the stack unchanged from one deploy to the next.
    os.utime(bootstrap, (1_000_000_000, 1_000_000_000))
    t = load_template()
    t["Globals"]["Function"]["CodeUri"] = str(code)
    for r in t["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"].pop("CodeUri", None)
    path = work / "template.json"
    path.write_text(json.dumps(t, indent=1))
    return path


class NoManagedPolicyNames:
    """The translator's managed-policy loader: the template names managed policies only by ARN."""

    def load(self):
        return {}


def translate(template, parameters):
    """The AWS::Serverless-2016-10-31 transform, run here because the emulator's CloudFormation
    does not run transforms: the same translator (samtranslator) the CloudFormation service uses."""
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from samtranslator.translator.transform import transform

    return transform(copy.deepcopy(template), dict(parameters), NoManagedPolicyNames())


# Resource types moto leaves out whose attributes the template's outputs read.
LEFT_OUT_WITH_ATTRIBUTES_READ = {"AWS::CloudFront::Distribution"}


def drop_outputs_of_left_out(translated):
    """Removes (and names) the outputs that read an attribute of a resource the emulator leaves out."""
    left_out = {logical for logical, r in translated["Resources"].items()
                if r["Type"] in LEFT_OUT_WITH_ATTRIBUTES_READ}

    def reads_left_out(value):
        if isinstance(value, dict):
            get_att = value.get("Fn::GetAtt")
            if isinstance(get_att, list) and get_att and get_att[0] in left_out:
                return True
            if isinstance(get_att, str) and get_att.split(".")[0] in left_out:
                return True
            sub = value.get("Fn::Sub")
            text = sub[0] if isinstance(sub, list) and sub else sub
            if isinstance(text, str) and any("${" + name + "." in text for name in left_out):
                return True
            return any(reads_left_out(v) for v in value.values())
        if isinstance(value, list):
            return any(reads_left_out(v) for v in value)
        return False

    outputs = translated.get("Outputs", {})
    dropped = sorted(name for name, output in outputs.items() if reads_left_out(output.get("Value")))
    for name in dropped:
        del outputs[name]
    return dropped


def stack_dir(stack_name):
    """Where a deploy keeps its templates (the stand-in code, packaged, translated)."""
    return ROOT / "target" / "stacks" / stack_name


def deploy(endpoint, stack_name, built=False, overrides=None, echo=False):
    """`sam package` + the transform + `sam deploy`, with samconfig.toml's `local` environment.

    built: deploy `sam build`'s output (.aws-sam/build); otherwise template.yaml with a stand-in
    for each function's code. overrides: parameters set on top of samconfig's parameter_overrides.
    Returns what the deployed stack holds (see read_stack), plus what this deploy did."""
    work = stack_dir(stack_name)
    work.mkdir(parents=True, exist_ok=True)
    bucket = samconfig("deploy")["s3_bucket"]
    s3 = session().client("s3", endpoint_url=endpoint)
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    if built:
        if not BUILT_TEMPLATE.exists():
            raise RuntimeError(f"{BUILT_TEMPLATE.relative_to(ROOT)} is missing: run `sam build` first")
        source = BUILT_TEMPLATE
    else:
        source = placeholder_template(work)
    packaged = work / "packaged.yaml"
    config = ["--config-env", SAMCONFIG_ENV, "--config-file", str(ROOT / "samconfig.toml")]
    sam(["package", *config, "--template-file", str(source), "--output-template-file", str(packaged)],
        endpoint, echo)
    parameters = parse_overrides(samconfig("deploy").get("parameter_overrides"))
    parameters.update(overrides or {})
    translated = translate(load_template(packaged), parameters)
    outputs_left_out = drop_outputs_of_left_out(translated)
    translated_file = work / "translated.json"
    translated_file.write_text(json.dumps(translated, indent=1))
    output = sam(["deploy", *config, "--template-file", str(translated_file), "--stack-name", stack_name,
                  "--parameter-overrides", " ".join(f"{k}={shlex.quote(v)}" for k, v in parameters.items())],
                 endpoint, echo)
    summary = read_stack(endpoint, stack_name, translated)
    summary["changed"] = "No changes to deploy" not in output
    summary["outputs_left_out"] = outputs_left_out
    return summary


def session():
    return boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)


def read_stack(endpoint, stack_name, translated):
    """What CloudFormation created: status, outputs, each resource's physical id, each function's
    resolved environment, and the resource types the emulator left out."""
    s = session()
    cfn = s.client("cloudformation", endpoint_url=endpoint)
    lam = s.client("lambda", endpoint_url=endpoint)
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    resources, types = {}, {}
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for r in page["StackResourceSummaries"]:
            resources[r["LogicalResourceId"]] = r.get("PhysicalResourceId")
            types[r["LogicalResourceId"]] = r["ResourceType"]
    # The emulator leaves out of the stack what it cannot create (they are not listed at all).
    skipped = sorted({r["Type"] for logical, r in translated["Resources"].items() if logical not in resources})
    functions, function_arns = {}, set()
    for logical, r in load_template()["Resources"].items():
        if r["Type"] == "AWS::Serverless::Function":
            config = lam.get_function_configuration(FunctionName=resources[logical])
            function_arns.add(config["FunctionArn"])
            variables = config.get("Environment", {}).get("Variables", {})
            # Lambda holds every value as a string (the emulator keeps a Number parameter's type).
            functions[r["Metadata"]["BuildProperties"]["Binary"]] = {k: str(v) for k, v in variables.items()}
    aliases = {}
    for logical, kind in types.items():
        if kind == "AWS::Lambda::Alias":
            function, name = resources[logical].rsplit(":", 1)
            alias = lam.get_alias(FunctionName=function, Name=name)
            aliases[logical] = {"AliasArn": alias["AliasArn"], "FunctionVersion": alias["FunctionVersion"]}
    mappings = [
        {"EventSourceArn": m["EventSourceArn"], "FunctionArn": m["FunctionArn"]}
        for page in lam.get_paginator("list_event_source_mappings").paginate()
        for m in page["EventSourceMappings"]
        if m["FunctionArn"].rsplit(":", 1)[0] in function_arns or m["FunctionArn"] in function_arns
    ]
    return {
        "endpoint": endpoint,
        "stack": stack_name,
        "status": stack["StackStatus"],
        "outputs": {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs", [])},
        "resources": {k: v for k, v in resources.items() if v},
        "types": types,
        "skipped": skipped,
        "functions": functions,
        "aliases": aliases,
        "event_source_mappings": mappings,
    }


def function_env(summary):
    """Every function's deployed environment in one file for `cargo lambda watch`, plus what the
    emulator needs; and each function's own."""
    env = {
        "AWS_ENDPOINT_URL": summary["endpoint"],
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "LOG_LEVEL": "info",
    }
    for variables in summary["functions"].values():
        env.update(variables)
    # Local callers come from anywhere (curl, a dev server).
    env["ALLOWED_ORIGINS"] = "*"
    return env, summary["functions"]


def write_outputs(summary, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    env, _ = function_env(summary)
    (out_dir / "env").write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
    (out_dir / "stack.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex(("127.0.0.1", port)) == 0


def pid_alive(pid_file):
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def start_emulator(port):
    """Starts the emulator on `port` unless the one `up` started is still running there."""
    LOCAL.mkdir(exist_ok=True)
    pid_file = LOCAL / "moto.pid"
    if pid_alive(pid_file) and port_open(port):
        print(f"local-up: emulator already running on 127.0.0.1:{port}")
        return
    if port_open(port):
        sys.exit(f"port {port} is in use by another program; choose another with LOCAL_PORT=")
    log = open(LOCAL / "moto.log", "w")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tools" / "moto_server.py"), "--port", str(port), "--serve-forever"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    pid_file.write_text(str(proc.pid))
    deadline = time.time() + 20
    while not port_open(port):
        if proc.poll() is not None or time.time() > deadline:
            sys.exit(f"the emulator did not start; see {LOCAL / 'moto.log'}")
        time.sleep(0.1)
    print(f"local-up: emulator started on 127.0.0.1:{port} (pid {proc.pid})")


def deployed(endpoint, stack_name):
    """The stack as an earlier `up` deployed it on this emulator, or None."""
    translated = stack_dir(stack_name) / "translated.json"
    try:
        return read_stack(endpoint, stack_name, json.loads(translated.read_text()))
    except (OSError, ValueError, botocore.exceptions.ClientError):
        return None


def up(port, stack_name, build=False, overrides=None):
    """The emulator, the stack deployed into it with `sam deploy`, and .local/env for the functions.
    build: run `sam build` and deploy its output, as `make deploy` does against AWS."""
    start_emulator(port)
    endpoint = f"http://127.0.0.1:{port}"
    if build:
        print("local-up: sam build (cargo lambda, arm64, release)", flush=True)
        sam(["build", "--config-env", SAMCONFIG_ENV, "--config-file", str(ROOT / "samconfig.toml")],
            endpoint, echo=True)
    summary = deploy(endpoint, stack_name, built=build, overrides=overrides, echo=build)
    write_outputs(summary, LOCAL)
    show(summary)
    return summary


def show(summary):
    print(f"local-up: stack {summary['stack']}: {summary['status']}"
          f"{'' if summary.get('changed', True) else ' (no changes to deploy)'}")
    for logical, physical in sorted(summary["resources"].items()):
        print(f"  {logical:<42} {summary['types'][logical]:<34} {physical}")
    print("local-up: resource types the emulator cannot create, left out of the local stack:")
    for kind in summary["skipped"]:
        print(f"  {kind}")
    if summary.get("outputs_left_out"):
        print("local-up: outputs that read a left-out resource, left out too: "
              + ", ".join(summary["outputs_left_out"]))
    print(f"local-up: each function's deployed environment written to {(LOCAL / 'env').relative_to(ROOT)}")


def stop_group(pid, grace=5.0):
    """SIGTERM the process group, wait, then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except OSError:
            return
        deadline = time.time() + grace
        while time.time() < deadline:
            # A child of ours stays in its group as a zombie until it is reaped.
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
            try:
                os.killpg(pid, 0)
            except OSError:
                return
            time.sleep(0.05)


def down(keep_emulator=False):
    stopped = 0
    for pid_file in sorted(LOCAL.glob("*.pid")):
        if keep_emulator and pid_file.name == "moto.pid":
            continue
        pid = pid_alive(pid_file)
        if pid:
            stop_group(pid)
            stopped += 1
            print(f"local-down: stopped {pid_file.stem} (pid {pid})")
        pid_file.unlink(missing_ok=True)
    if not stopped:
        print("local-down: nothing was running")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up")
    p_up.add_argument("--port", type=int, default=int(os.environ.get("LOCAL_PORT", DEFAULT_PORT)))
    p_up.add_argument("--stack", default=DEFAULT_STACK)
    p_up.add_argument("--build", action="store_true", help="sam build, and deploy its output")
    sub.add_parser("down")
    p_deploy = sub.add_parser("deploy")
    p_deploy.add_argument("--endpoint", required=True)
    p_deploy.add_argument("--stack", required=True)
    p_deploy.add_argument("--out", type=Path, required=True)
    p_translate = sub.add_parser("translate")
    p_translate.add_argument("--template", type=Path, default=ROOT / "template.yaml")
    for p in (p_up, p_deploy):
        p.add_argument("--set", action="append", default=[], metavar="PARAMETER=VALUE",
                       help="a template parameter on top of samconfig.toml's parameter_overrides")
    args = parser.parse_args()
    if args.command == "down":
        down()
        return
    if args.command == "translate":
        # For checks of what the transform makes of the template; the code location is a stand-in.
        template = load_template(args.template)
        template["Globals"]["Function"]["CodeUri"] = "s3://artifacts/code.zip"
        print(json.dumps(translate(template, {})))
        return
    overrides = parse_overrides(" ".join(shlex.quote(item) for item in args.set))
    try:
        if args.command == "up":
            up(args.port, args.stack, build=args.build, overrides=overrides)
        else:
            summary = write_outputs(deploy(args.endpoint, args.stack, overrides=overrides), args.out)
            print(json.dumps(summary))
    except RuntimeError as e:
        sys.exit(f"local-stack: {e}")


if __name__ == "__main__":
    main()
