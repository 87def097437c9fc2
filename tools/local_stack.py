"""The local stack: a moto server provisioned from template.yaml, so local runs use the same
resources and settings as a deployment.

    python tools/local_stack.py up [--port 4566]        start moto (if needed), provision, write .local/env
    python tools/local_stack.py down                    stop what `up` and the demo started (by pid files)
    python tools/local_stack.py provision --endpoint URL --stack NAME [--out DIR]
                                                         provision into a running emulator (used by tests)

Provisioned from the template, not from a second list: every AWS::S3::Bucket, AWS::DynamoDB::Table
(keys, indexes), AWS::SQS::Queue (FIFO, visibility, redrive to its DLQ), AWS::SNS::Topic and
AWS::SecretsManager::Secret (a random value, as GenerateSecretString makes one).
Names follow the template (explicit names with ${AWS::StackName} etc. resolved) or CloudFormation's
pattern `<stack>-<LogicalId>`. Functions are not created (they run under `cargo lambda watch`); their
Environment is resolved from the template and written to .local/env for it.
"""
import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import yaml

ROOT = Path(__file__).resolve().parent.parent
LOCAL = ROOT / ".local"
ACCOUNT = "123456789012"
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


def load_template(path=ROOT / "template.yaml"):
    with open(path) as f:
        return yaml.load(f, Loader=CfnLoader)


class Stack:
    """Resolves template expressions against the local resources."""

    def __init__(self, template, stack, endpoint):
        self.t = template
        self.stack = stack
        self.endpoint = endpoint
        self.physical = {}  # logical id -> Ref value (name, URL or ARN)
        self.attrs = {}  # (logical id, attribute) -> value
        self.params = {}
        for k, v in template.get("Parameters", {}).items():
            default = v.get("Default")
            # A CommaDelimitedList is a list wherever it is referenced (Fn::Join joins its items).
            if v.get("Type") == "CommaDelimitedList" and isinstance(default, str):
                default = [item.strip() for item in default.split(",")]
            self.params[k] = default

    def resources(self, kind):
        return [(k, r) for k, r in self.t["Resources"].items() if r["Type"] == kind]

    def ref(self, name):
        pseudo = {
            "AWS::StackName": self.stack,
            "AWS::AccountId": ACCOUNT,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.physical.get(name)

    def resolve(self, value):
        if isinstance(value, dict) and len(value) == 1:
            (fn, arg), = value.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::GetAtt":
                return self.attrs.get((arg[0], arg[1]))
            if fn == "Fn::Sub":
                text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
                out, i = "", 0
                while i < len(text):
                    start = text.find("${", i)
                    if start < 0:
                        out += text[i:]
                        break
                    end = text.index("}", start)
                    out += text[i:start]
                    key = text[start + 2:end]
                    if key in extra:
                        out += str(self.resolve(extra[key]))
                    elif "." in key:
                        out += str(self.attrs.get(tuple(key.split(".", 1))))
                    else:
                        out += str(self.ref(key))
                    i = end + 1
                return out
            if fn == "Fn::Join":
                sep, items = arg
                items = self.resolve(items) if isinstance(items, dict) else items
                parts = []
                for item in items:
                    resolved = self.resolve(item)
                    parts.extend(resolved if isinstance(resolved, list) else [resolved])
                return sep.join(str(p) for p in parts)
            return None
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def name(self, logical, explicit):
        return self.resolve(explicit) if explicit is not None else f"{self.stack}-{logical}"


def provision(endpoint, stack_name):
    """Creates the template's buckets, tables, queues and topics; returns the resolved stack."""
    t = load_template()
    stack = Stack(t, stack_name, endpoint)
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
    s3 = session.client("s3", endpoint_url=endpoint)
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    sns = session.client("sns", endpoint_url=endpoint)

    for logical, r in stack.resources("AWS::S3::Bucket"):
        name = stack.name(logical, r["Properties"].get("BucketName")).lower()
        try:
            s3.create_bucket(Bucket=name)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
        stack.physical[logical] = name
        stack.attrs[(logical, "Arn")] = f"arn:aws:s3:::{name}"

    for logical, r in stack.resources("AWS::DynamoDB::Table"):
        p = r["Properties"]
        name = stack.name(logical, p.get("TableName"))
        args = {
            "TableName": name,
            "AttributeDefinitions": p["AttributeDefinitions"],
            "KeySchema": p["KeySchema"],
            "BillingMode": p.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if p.get("GlobalSecondaryIndexes"):
            args["GlobalSecondaryIndexes"] = [
                {"IndexName": g["IndexName"], "KeySchema": g["KeySchema"], "Projection": g["Projection"]}
                for g in p["GlobalSecondaryIndexes"]
            ]
        try:
            ddb.create_table(**args)
        except ddb.exceptions.ResourceInUseException:
            pass
        stack.physical[logical] = name
        stack.attrs[(logical, "Arn")] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"

    # Dead-letter queues first, so redrive policies can name them.
    queues = stack.resources("AWS::SQS::Queue")
    queues.sort(key=lambda q: "RedrivePolicy" in q[1].get("Properties", {}))
    for logical, r in queues:
        p = r.get("Properties", {})
        fifo = bool(p.get("FifoQueue"))
        name = stack.name(logical, p.get("QueueName"))
        if fifo and not name.endswith(".fifo"):
            name += ".fifo"
        attributes = {}
        if fifo:
            attributes["FifoQueue"] = "true"
        for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds"):
            if key in p:
                attributes[key] = str(stack.resolve(p[key]))
        if "RedrivePolicy" in p:
            policy = {k: stack.resolve(v) for k, v in p["RedrivePolicy"].items()}
            attributes["RedrivePolicy"] = json.dumps(policy)
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        stack.physical[logical] = url
        stack.attrs[(logical, "Arn")] = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        stack.attrs[(logical, "QueueName")] = name
        stack.attrs[(logical, "QueueUrl")] = url

    # Secrets the stack generates: a random value, as GenerateSecretString makes one.
    sm = session.client("secretsmanager", endpoint_url=endpoint)
    for logical, r in stack.resources("AWS::SecretsManager::Secret"):
        name = stack.name(logical, r.get("Properties", {}).get("Name"))
        try:
            arn = sm.create_secret(Name=name, SecretString=secrets.token_urlsafe(48))["ARN"]
        except sm.exceptions.ResourceExistsException:
            arn = sm.describe_secret(SecretId=name)["ARN"]
        stack.physical[logical] = arn

    for logical, r in stack.resources("AWS::SNS::Topic"):
        p = r.get("Properties", {})
        name = stack.name(logical, p.get("TopicName"))
        arn = sns.create_topic(Name=name)["TopicArn"]
        stack.physical[logical] = arn
        stack.attrs[(logical, "TopicName")] = name
    return stack


def function_env(stack, endpoint):
    """Each function's environment as the template defines it, plus what the emulator needs."""
    t = stack.t
    common = {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "LOG_LEVEL": "info",
    }
    globals_env = t.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    env = dict(common)
    functions = {}
    for logical, r in stack.resources("AWS::Serverless::Function"):
        variables = dict(globals_env)
        variables.update(r["Properties"].get("Environment", {}).get("Variables", {}))
        resolved = {k: str(stack.resolve(v)) for k, v in variables.items()}
        functions[r["Metadata"]["BuildProperties"]["Binary"]] = resolved
        env.update(resolved)
    # Local callers come from anywhere (curl, a dev server).
    env["ALLOWED_ORIGINS"] = "*"
    return env, functions


def write_outputs(stack, endpoint, out_dir):
    out_dir.mkdir(parents=True, exist_ok=True)
    env, functions = function_env(stack, endpoint)
    (out_dir / "env").write_text("".join(f"{k}={v}\n" for k, v in sorted(env.items())))
    summary = {
        "endpoint": endpoint,
        "stack": stack.stack,
        "resources": stack.physical,
        "functions": functions,
    }
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


def up(port, stack_name):
    LOCAL.mkdir(exist_ok=True)
    pid_file = LOCAL / "moto.pid"
    if not (pid_alive(pid_file) and port_open(port)):
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
    else:
        print(f"local-up: emulator already running on 127.0.0.1:{port}")
    endpoint = f"http://127.0.0.1:{port}"
    stack = provision(endpoint, stack_name)
    summary = write_outputs(stack, endpoint, LOCAL)
    for logical, physical in sorted(summary["resources"].items()):
        print(f"  {logical:<28} {physical}")
    print(f"local-up: settings written to {LOCAL / 'env'}")


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


def down():
    stopped = 0
    for pid_file in sorted(LOCAL.glob("*.pid")):
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
    sub.add_parser("down")
    p_prov = sub.add_parser("provision")
    p_prov.add_argument("--endpoint", required=True)
    p_prov.add_argument("--stack", required=True)
    p_prov.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.command == "up":
        up(args.port, args.stack)
    elif args.command == "down":
        down()
    else:
        summary = write_outputs(provision(args.endpoint, args.stack), args.endpoint, args.out)
        print(json.dumps(summary))


if __name__ == "__main__":
    main()
