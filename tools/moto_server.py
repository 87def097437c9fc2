"""The project's local AWS: a moto server on a loopback port, used by the tests and the demo.

    python tools/moto_server.py              # free port, printed on stdout; stops when stdin closes
    python tools/moto_server.py --port 4566 --serve-forever   # fixed port, stops on SIGTERM
    python tools/moto_server.py --sqs-dedup-seconds 3        # FIFO dedup window shortened for a test

Stopping when stdin closes means a test binary that holds the pipe can never leave an orphan: when it
exits, however it exits, the OS closes the pipe and this server shuts down.

DynamoDB requests are executed one at a time. moto rolls a cancelled TransactWriteItems back by
restoring what it saved before it started, so a write that lands in between from another thread would
be silently undone. Real DynamoDB isolates each request; serialising DynamoDB requests inside the
emulator restores that guarantee while clients stay fully concurrent. Other services (SQS long polls,
S3 uploads) keep running in parallel. Two of moto's costs that grow with a table's or a queue's size
are removed (`transactions_snapshot_only_their_items`, `sqs_costs_less_per_message`): a sale of a few
thousand orders then runs in minutes, not hours.

The emulator's CloudFormation is made to do what CloudFormation does where the suite's stack needs
it and moto 5.2 falls short (`add_missing_cloudformation`, one named function per gap): the resource types `AWS::Lambda::Alias`,
`AWS::SecretsManager::Secret` and `AWS::CloudWatch::Alarm` (one metric or metric math); a version's `Version`
attribute; the `.fifo` suffix on a FIFO queue's generated name; outputs after a change set; and
an update that keeps parameters (UsePreviousValue) being seen as no change. What else moto cannot
create is left out of the stack with a warning; `local_stack.py deploy` lists those types.
"""
import argparse
import signal
import sys
import threading

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import make_server


class SerialiseDynamoDB:
    """WSGI middleware: one DynamoDB request at a time."""

    def __init__(self, app):
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith("DynamoDB_"):
            return self.app(environ, start_response)
        with self.lock:
            # Materialise the response inside the lock: the work happens while it is produced.
            return list(self.app(environ, start_response))


def transactions_snapshot_only_their_items() -> None:
    """moto rolls a cancelled TransactWriteItems back by deep-copying, before it starts, every table the
    transaction names, once per action: each transaction costs time and memory in proportion to the
    size of those tables. A sale's orders table grows with every order, so each reservation gets
    slower (about 0.8 s at 2000 orders, against 6 ms for an UpdateItem) and the whole run quadratic.
    Here a transaction snapshots only the items its actions name, and a cancellation restores those:
    the same all-or-nothing result at a cost that does not grow with the table.
    """
    import copy

    import moto.dynamodb.models as dynamodb_models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    real_deepcopy = copy.deepcopy

    class TablesAreNotCopied:
        """Stands in for the `copy` module inside moto's DynamoDB backend: a table is not copied."""

        @staticmethod
        def deepcopy(value, memo=None):
            return value if isinstance(value, Table) else real_deepcopy(value, memo)

    dynamodb_models.copy = TablesAreNotCopied
    original = DynamoDBBackend.transact_write_items

    def named_items(backend, transact_items):
        """(table, hash key, range key) of each action's item, as moto stores them."""
        for entry in transact_items:
            for op_type, op in entry.items():
                table = backend.tables.get(op.get("TableName", ""))
                key = op.get("Item") if op_type == "Put" else op.get("Key")
                if table is None or not isinstance(key, dict) or table.hash_key_attr not in key:
                    continue
                range_value = None
                if table.range_key_attr is not None:
                    if table.range_key_attr not in key:
                        continue
                    range_value = DynamoType(key[table.range_key_attr])
                yield table, DynamoType(key[table.hash_key_attr]), range_value

    def restore(table, hash_value, range_value, previous):
        if range_value is None:
            if previous is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = previous
        elif previous is None:
            table.items.get(hash_value, {}).pop(range_value, None)
        else:
            table.items[hash_value][range_value] = previous

    def transact_write_items(self, transact_items):
        snapshots = [
            (table, h, r, real_deepcopy(table.get_item(h, r)))
            for table, h, r in named_items(self, transact_items)
        ]
        try:
            return original(self, transact_items)
        except Exception:
            for snapshot in reversed(snapshots):
                restore(*snapshot)
            raise

    DynamoDBBackend.transact_write_items = transact_write_items


def sqs_costs_less_per_message() -> None:
    """Two costs of moto's SQS that grow with the number of messages in a queue, and a sale's queue
    holds thousands:

    - ReceiveMessage asks, for every message it considers, whether the message is still within the
      queue's retention period, and answers by computing all the queue's attributes, three of which
      count the queue's messages: O(n) per message considered. Here the check reads the retention
      period alone.
    - Every visibility or delay check (per message, in every receive, every count, every FIFO send's
      attribute lookups) reads the clock through `datetime` arithmetic. Here it reads `time.time()`,
      the same number (the emulator never freezes its clock).
    """
    import time

    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    exact = sqs_models.unix_time_millis

    def unix_time_millis(dt=None):
        return time.time() * 1000.0 if dt is None else exact(dt)

    sqs_models.unix_time_millis = unix_time_millis

    def is_message_valid_based_on_retention_period(self, queue_name, message):
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


# moto finds CloudFormation models among `CloudFormationModel`'s subclasses, which Python holds weakly:
# every model added here is also kept in this list so it cannot be collected.
ADDED_MODELS = []


def cloudformation_creates_lambda_aliases() -> None:
    """AWS::Lambda::Alias, which moto 5.2's CloudFormation cannot create: every event source of the
    stack invokes a function's `live` alias (AutoPublishAlias). Ref is the alias ARN; moving the alias
    to a new version is an update."""
    from moto.awslambda.models import lambda_backends
    from moto.core.common_models import CloudFormationModel

    class StackAlias(CloudFormationModel):
        # moto files each model under the service its module names.
        __module__ = "moto.awslambda.stack_alias"

        def __init__(self, alias):
            self.alias = alias

        @staticmethod
        def cloudformation_type():
            return "AWS::Lambda::Alias"

        @property
        def physical_resource_id(self):
            return self.alias.arn

        @classmethod
        def has_cfn_attr(cls, attr):
            return attr == "AliasArn"

        def get_cfn_attribute(self, attribute_name):
            return self.alias.arn

        @classmethod
        def put(cls, cloudformation_json, account_id, region_name, update):
            p = cloudformation_json["Properties"]
            backend = lambda_backends[account_id][region_name]
            alias = (backend.update_alias if update else backend.create_alias)(
                name=p["Name"], function_name=p["FunctionName"], function_version=str(p["FunctionVersion"]),
                description=p.get("Description", ""), routing_config=p.get("RoutingConfig"),
            )
            return cls(alias)

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            return cls.put(cloudformation_json, account_id, region_name, update=False)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                            account_id, region_name):
            return cls.put(cloudformation_json, account_id, region_name, update=True)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            p = cloudformation_json["Properties"]
            lambda_backends[account_id][region_name].delete_alias(p["Name"], p["FunctionName"])

    ADDED_MODELS.append(StackAlias)


def cloudformation_creates_generated_secrets() -> None:
    """AWS::SecretsManager::Secret, which moto 5.2's CloudFormation cannot create: the stack generates
    the key that signs user-api's page tokens. Ref is the ARN; GenerateSecretString draws a random value
    from the alphabet it describes, as CloudFormation does."""
    import secrets
    import string

    from moto.core.common_models import CloudFormationModel
    from moto.secretsmanager.models import secretsmanager_backends

    class StackSecret(CloudFormationModel):
        __module__ = "moto.secretsmanager.stack_secret"

        def __init__(self, arn):
            self.arn = arn

        @staticmethod
        def cloudformation_type():
            return "AWS::SecretsManager::Secret"

        @staticmethod
        def cloudformation_name_type():
            return "Name"

        @property
        def physical_resource_id(self):
            return self.arn

        @classmethod
        def has_cfn_attr(cls, attr):
            return attr == "Id"

        def get_cfn_attribute(self, attribute_name):
            return self.arn

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            p = cloudformation_json["Properties"]
            value = p.get("SecretString")
            if value is None:
                spec = p.get("GenerateSecretString", {})
                alphabet = string.ascii_letters + string.digits
                if not spec.get("ExcludePunctuation"):
                    alphabet += string.punctuation
                alphabet = "".join(c for c in alphabet if c not in spec.get("ExcludeCharacters", ""))
                value = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
            name = p.get("Name") or resource_name
            backend = secretsmanager_backends[account_id][region_name]
            backend.create_secret(
                name=name, secret_string=value, secret_binary=None,
                description=p.get("Description"), tags=p.get("Tags"), kms_key_id=p.get("KmsKeyId"),
                client_request_token=None, replica_regions=[], force_overwrite=False,
            )
            return cls(backend.describe_secret(name).arn)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            backend = secretsmanager_backends[account_id][region_name]
            backend.delete_secret(resource_name, recovery_window_in_days=None, force_delete_without_recovery=True)

    ADDED_MODELS.append(StackSecret)


def alarm_metric_queries(metrics):
    """An alarm's `Metrics` (metric math) as moto's PutMetricAlarm takes them; None for one metric."""
    from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat

    if not metrics:
        return None
    queries = []
    for m in metrics:
        stat = m.get("MetricStat")
        metric_stat = None
        if stat:
            metric = stat["Metric"]
            metric_stat = MetricStat(
                metric=Metric(
                    metric_name=metric["MetricName"], namespace=metric.get("Namespace"),
                    dimensions=[Dimension(d["Name"], d.get("Value", "")) for d in metric.get("Dimensions", [])],
                ),
                period=stat.get("Period"), stat=stat.get("Stat"), unit=stat.get("Unit"),
            )
        queries.append(MetricDataQuery(
            query_id=m["Id"], label=m.get("Label"), period=m.get("Period"),
            return_data=m.get("ReturnData", True), expression=m.get("Expression"), metric_stat=metric_stat,
        ))
    return queries


def cloudformation_creates_alarms() -> None:
    """AWS::CloudWatch::Alarm (one metric or metric math), which moto 5.2's CloudFormation skips: the
    stack's alarms, the rollout alarms its deployment groups name among them. Ref is the name, `Arn`
    the ARN."""
    from moto.cloudwatch.models import cloudwatch_backends
    from moto.core.common_models import CloudFormationModel

    class StackAlarm(CloudFormationModel):
        __module__ = "moto.cloudwatch.stack_alarm"

        def __init__(self, alarm):
            self.alarm = alarm

        @staticmethod
        def cloudformation_type():
            return "AWS::CloudWatch::Alarm"

        @staticmethod
        def cloudformation_name_type():
            return "AlarmName"

        @property
        def physical_resource_id(self):
            return self.alarm.name

        @classmethod
        def has_cfn_attr(cls, attr):
            return attr == "Arn"

        def get_cfn_attribute(self, attribute_name):
            return self.alarm.alarm_arn

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            p = cloudformation_json["Properties"]
            alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
                name=p.get("AlarmName") or resource_name, namespace=p.get("Namespace"),
                metric_name=p.get("MetricName"), comparison_operator=p["ComparisonOperator"],
                evaluation_periods=int(p["EvaluationPeriods"]), period=int(p.get("Period", 60)),
                threshold=float(p.get("Threshold", 0)), statistic=p.get("Statistic"),
                extended_statistic=p.get("ExtendedStatistic"), description=p.get("AlarmDescription"),
                # A dimension naming a resource the emulator left out has no value.
                dimensions=[{"Name": d["Name"], "Value": d.get("Value", "")} for d in p.get("Dimensions", [])],
                alarm_actions=p.get("AlarmActions", []),
                ok_actions=p.get("OKActions", []), treat_missing_data=p.get("TreatMissingData"),
                metric_data_queries=alarm_metric_queries(p.get("Metrics")),
                datapoints_to_alarm=int(p["DatapointsToAlarm"]) if "DatapointsToAlarm" in p else None,
            )
            return cls(alarm)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                            account_id, region_name):
            name = original_resource.alarm.name
            return cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])

    ADDED_MODELS.append(StackAlarm)


def cloudformation_resolves_version_numbers() -> None:
    """A Lambda version's `Version` attribute, which moto 5.2 does not resolve: an alias names its version
    by `!GetAtt <Version>.Version`, and so do the rollout alarms' `ExecutedVersion` dimension."""
    from moto.awslambda.models import LambdaVersion

    LambdaVersion.has_cfn_attr = classmethod(lambda cls, attr: attr == "Version")
    LambdaVersion.get_cfn_attribute = lambda self, attribute_name: self.version


def cloudformation_names_fifo_queues_fifo() -> None:
    """CloudFormation names a FIFO queue it names itself with the `.fifo` suffix SQS requires; moto 5.2
    does not, and then refuses the queue. The payment queue is one."""
    from moto.sqs.models import Queue

    create_queue = Queue.create_from_cloudformation_json.__func__

    def create_fifo_aware(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        fifo = str(cloudformation_json.get("Properties", {}).get("FifoQueue", "")).lower() == "true"
        if fifo and not str(resource_name).endswith(".fifo"):
            resource_name = str(resource_name)[:75] + ".fifo"
        return create_queue(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    Queue.create_from_cloudformation_json = classmethod(create_fifo_aware)


def change_sets_resolve_outputs() -> None:
    """A stack created or updated through a change set (as `sam deploy` does) gets its outputs, as one
    created by CreateStack does; moto 5.2 leaves them unresolved."""
    from moto.cloudformation.models import CloudFormationBackend

    execute_change_set = CloudFormationBackend.execute_change_set

    def execute_and_resolve_outputs(self, change_set_name, stack_name=None):
        execute_change_set(self, change_set_name, stack_name)
        for stack in self.stacks.values():
            if stack.name == stack_name or stack.stack_id == stack_name or stack_name is None:
                stack._parse_template()
                stack.output_map = stack._create_output_map()

    CloudFormationBackend.execute_change_set = execute_and_resolve_outputs


def kept_parameters_are_no_change() -> None:
    """An update that keeps a parameter (UsePreviousValue, as a `sam deploy` rerun does) passes its
    resolved value back: a list parameter arrives as a list, and numbers as numbers, so moto 5.2 sees a
    change where there is none. Compare and load values as text."""
    from moto.cloudformation import parsing
    from moto.cloudformation.models import Stack

    def as_text(value):
        return ",".join(map(str, value)) if isinstance(value, list) else str(value)

    def same_parameters(self, other):
        slots = self.template_dict.get("Parameters", {})
        current = self.stack_parameters
        return all(as_text(current.get(k)) == as_text(other.get(k, slot.get("Default"))) for k, slot in slots.items())

    Stack.has_parameters = same_parameters
    load_parameters = parsing.ResourceMap.load_parameters

    def load_text_parameters(self):
        self.input_parameters = {k: as_text(v) if isinstance(v, list) else v for k, v in self.input_parameters.items()}
        load_parameters(self)

    parsing.ResourceMap.load_parameters = load_text_parameters


def add_missing_cloudformation() -> None:
    """What CloudFormation does, where the suite's stack needs it and moto 5.2 falls short."""
    from moto.cloudformation import parsing

    cloudformation_creates_lambda_aliases()
    cloudformation_creates_generated_secrets()
    cloudformation_creates_alarms()
    cloudformation_resolves_version_numbers()
    cloudformation_names_fifo_queues_fifo()
    change_sets_resolve_outputs()
    kept_parameters_are_no_change()
    # moto caches the models it found; the ones added above must be found.
    parsing.get_model_list.cache_clear()
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--serve-forever", action="store_true", help="ignore stdin; stop on SIGTERM")
    parser.add_argument(
        "--sqs-dedup-seconds",
        type=int,
        help="FIFO deduplication window (AWS: 300 s), shortened so a test can outlive it",
    )
    args = parser.parse_args()
    if args.sqs_dedup_seconds is not None:
        import moto.sqs.models

        moto.sqs.models.DEDUPLICATION_TIME_IN_SECONDS = args.sqs_dedup_seconds

    add_missing_cloudformation()
    transactions_snapshot_only_their_items()
    sqs_costs_less_per_message()
    app = SerialiseDynamoDB(DomainDispatcherApplication(create_backend_app))
    server = make_server(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    print(server.server_address[1], flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    if args.serve_forever:
        stop.wait()
    else:
        watcher = threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True)
        watcher.start()
        stop.wait()
    server.shutdown()


if __name__ == "__main__":
    main()
