"""Deploys template.yaml into moto, one stack per parameter combination, and checks what moto keeps.

Run by infra/sam/deploy_integration_test.go (`make test`) with the project venv's Python:

    python infra/sam/deploycheck.py TEMPLATE RUN_ID

AWS_ENDPOINT_URL names moto; AWS_REGION its region. Prints one JSON line per combination:
{"name", "errors": [...], "facts": [...]}; exits 0 even when checks fail (the Go test reports them).

How a combination is deployed:
1. The SAM translator turns the template into CloudFormation, as `sam deploy` has CloudFormation do, with
   CodeUri pointing at a package uploaded to moto's S3 (as `sam package` would).
2. moto's CloudFormation evaluates the Conditions (a probe stack whose outputs are the conditions).
3. The stack is built in phases in dependency order. Resource types moto's CloudFormation does not
   implement (UNSUPPORTED) are created through their own APIs with their properties resolved here, and
   the stack's references to them become those resources' real ARNs and names. Everything else is
   created by moto's CloudFormation: the first phase is CreateStack, later ones UpdateStack.
4. The checks read back what moto kept: the function's configuration and environment, the role's
   policy, the event source mapping, the alarms' dimensions, the dashboard, the outputs.

What an emulator cannot prove is listed in EMULATOR_LIMITS and in docs/deploy.md.
"""

import ast
import copy
import io
import json
import os
import re
import sys
import time
import tomllib
import traceback
import zipfile

import boto3
from botocore.config import Config
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ACCOUNT = "123456789012"  # moto's default account
EMULATOR_LIMITS = [
    "Lambda refusing a second mapping of one stream to one function ARN (409): moto does not enforce it "
    "for Kinesis, and its CloudFormation does not replace resources as AWS does, so the StartingPosition "
    "change is argued (alias per starting position), not proven",
    "a mapping on an enhanced fan-out consumer: moto's Lambda accepts only stream ARNs, so with "
    "EnhancedFanOut=true the mapping's properties are resolved and checked here but never created",
    "IAM: moto does not evaluate policies; that the role is enough (and no more) for Lambda's poller, "
    "KMS (kms:ViaService) and Secrets Manager is only checked as text",
    "CloudWatch: alarms are created through PutMetricAlarm (moto's CloudFormation lacks them) and never "
    "evaluated; the metric math, M of N and missing-data behaviour are AWS's",
    "Rules and parameter constraints (AllowedPattern, AllowedValues): moto does not apply them; the Go "
    "unit tests apply them to sample values",
    "properties moto's CloudFormation drops: the function's Architectures and LoggingConfig, the stream's "
    "StreamEncryption, the table's TimeToLiveSpecification, the failure bucket's MetricsConfigurations "
    "(checked in the translated template and the "
    "Go unit tests instead); moto also keeps the mapping's function without its alias qualifier and "
    "leaves AWS::NoValue in a list as null",
    "anything at run time: polling, invocations, VPC networking, KMS decryption, the function itself",
]

# Parameter combinations, besides those of samconfig.toml's environments. Required parameters and every
# combination's own values; the rest take their defaults. "given" streams and secrets, "key" KMS keys
# and "topic" SNS topics are created through the APIs first.
BASE = {
    "PulsarServiceUrl": "pulsar+ssl://pulsar.example.com:6651",
    "PulsarTopic": "persistent://public/default/{stream}",
}
COMBINATIONS = [
    ("defaults: stream created, polling, no secret, audit on", {}),
    ("stream given, enhanced fan-out, secret ARN with its key, stream key, audit off", {
        "StreamArn": "given", "EnhancedFanOut": "true", "PulsarAuthSecret": "given",
        "PulsarAuthSecretKmsKeyArn": "key", "StreamKmsKeyArn": "key", "AuditEnabled": "false",
        "StartingPosition": "TRIM_HORIZON", "MaximumRetryAttempts": "100", "MaximumRecordAgeInSeconds": "3600",
        "BisectBatchOnFunctionError": "true", "AlarmTopicArn": "topic",
    }),
    ("stream created, enhanced fan-out, secret created with a key, VPC, AT_TIMESTAMP, mapping off", {
        "EnhancedFanOut": "true", "PulsarAuthSecret": "create", "PulsarAuthSecretKmsKeyArn": "key",
        "SubnetIds": "subnet-0a1b2c3d,subnet-4e5f6a7b", "SecurityGroupIds": "sg-0123abcd",
        "StartingPosition": "AT_TIMESTAMP", "StartingPositionTimestamp": "1700000000.5",
        "EventSourceEnabled": "false", "StreamMode": "PROVISIONED", "StreamShardCount": "2",
        "StreamKmsKeyArn": "key", "AuditRequired": "true",
    }),
    ("stream given, polling, secret created, audit off, VPC, bounded retries, failures to S3", {
        "StreamArn": "given", "PulsarAuthSecret": "create", "AuditEnabled": "false",
        "SubnetIds": "subnet-0a1b2c3d", "SecurityGroupIds": "sg-0123abcd,sg-4567ef01",
        "MaximumRetryAttempts": "10", "MaximumRecordAgeInSeconds": "60", "ParallelizationFactor": "2",
        "BatchSize": "500", "MaximumBatchingWindowInSeconds": "5", "AlarmTopicArn": "topic",
        "FailedRecordsAlarmPeriods": "10", "FailedRecordsAlarmDatapoints": "4",
        "OnFailureDestination": "S3", "FailureBucketRetentionDays": "30",
    }),
    ("defaults with the sink on: a stream of its own, two topics, secret ARN", {
        "SinkEnabled": "true", "SinkStreamArn": "given", "PulsarAuthSecret": "given",
        "SinkTopics": "persistent://public/default/out-a,persistent://public/default/out-b",
    }),
]

# The ARNs samconfig.toml holds are placeholders: each becomes a resource created for the run.
GIVEN_FOR = {"StreamArn": "given", "PulsarAuthSecret": "given", "AlarmTopicArn": "topic",
             "StreamKmsKeyArn": "key", "PulsarAuthSecretKmsKeyArn": "key"}


def samconfig_combinations(path):
    """A combination per samconfig.toml environment: its parameter_overrides, placeholders replaced."""
    with open(path, "rb") as f:
        cfg = tomllib.load(f)
    out = []
    for env, sections in cfg.items():
        if not isinstance(sections, dict) or "deploy" not in sections:
            continue
        combo = {}
        for o in sections["deploy"]["parameters"].get("parameter_overrides", []):
            k, v = o.split("=", 1)
            combo[k] = GIVEN_FOR[k] if v.startswith("arn:") else v
        out.append((f"samconfig.toml [{env}]", combo))
    return out


UNSUPPORTED = ("AWS::Lambda::Alias", "AWS::Kinesis::StreamConsumer", "AWS::SecretsManager::Secret",
               "AWS::CloudWatch::Alarm")
NO_VALUE = object()


class Check:
    def __init__(self):
        self.errors, self.facts = [], []

    def eq(self, what, got, want):
        if got != want:
            self.errors.append(f"{what}: got {got!r}, want {want!r}")

    def true(self, what, cond):
        if not cond:
            self.errors.append(what)


def clients():
    endpoint, region = os.environ["AWS_ENDPOINT_URL"], os.environ.get("AWS_REGION", "us-east-1")
    os.environ["AWS_DEFAULT_REGION"] = region  # the translator builds ARNs in it
    cfg = Config(retries={"max_attempts": 2})
    return {name: boto3.client(name, endpoint_url=endpoint, region_name=region, config=cfg,
                               aws_access_key_id="test", aws_secret_access_key="test")
            for name in ("cloudformation", "s3", "lambda", "iam", "kinesis", "secretsmanager",
                         "cloudwatch", "kms", "sqs", "dynamodb", "sns")}, region


# ---- intrinsic functions -------------------------------------------------------------------------------

def intrinsic(v):
    if isinstance(v, dict) and len(v) == 1:
        k = next(iter(v))
        if k == "Ref" or k == "Condition" or k.startswith("Fn::"):
            return k, v[k]
    return None, None


SUB_VAR = re.compile(r"\$\{([^!}][^}]*)\}")


def references(v, conds, resources):
    """The (resource, "Ref" or attribute) pairs v refers to, following only the Fn::If branches that hold."""
    fn, arg = intrinsic(v)
    if fn == "Ref":
        return {(arg, "Ref")} if arg in resources else set()
    if fn == "Fn::GetAtt":
        res, attr = arg if isinstance(arg, list) else arg.split(".", 1)
        return {(res, attr)}
    if fn == "Fn::If":
        return references(arg[1] if conds[arg[0]] else arg[2], conds, resources)
    if fn == "Fn::Sub":
        s, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
        out = set()
        for m in SUB_VAR.findall(s):
            base, _, attr = m.partition(".")
            if base in resources and m not in local:
                out.add((base, attr or "Ref"))
        return out | references(local, conds, resources)
    items = v.values() if isinstance(v, dict) else v if isinstance(v, list) else []
    return set().union(set(), *(references(x, conds, resources) for x in items))


def deps(v, conds, resources):
    """The resources v refers to, following only the Fn::If branches that hold."""
    return {r for r, _ in references(v, conds, resources)}


class Resolver:
    """Evaluates the intrinsic functions of an unsupported resource's properties."""

    def __init__(self, params, conds, values, stack_name, region):
        self.params, self.conds, self.values = params, conds, values
        self.pseudo = {"AWS::Region": region, "AWS::AccountId": ACCOUNT, "AWS::StackName": stack_name,
                       "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com"}

    def ref(self, name):
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.values[name]["Ref"]

    def __call__(self, v):
        fn, arg = intrinsic(v)
        if fn == "Ref":
            return self.ref(arg)
        if fn == "Fn::GetAtt":
            res, attr = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.values[res][attr]
        if fn == "Fn::If":
            return self(arg[1] if self.conds[arg[0]] else arg[2])
        if fn == "Fn::Sub":
            s, local = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            local = {k: self(x) for k, x in local.items()}

            def one(m):
                name = m.group(1)
                if name in local:
                    return str(local[name])
                if "." in name:
                    res, attr = name.split(".", 1)
                    return str(self.values[res][attr])
                return str(self.ref(name))
            return SUB_VAR.sub(one, s)
        if fn == "Fn::Join":
            return arg[0].join(str(x) for x in self(arg[1]))
        if fn == "Fn::Split":
            return self(arg[1]).split(arg[0])
        if fn == "Fn::Select":
            return self(arg[1])[int(self(arg[0]))]
        if isinstance(v, dict):
            out = {k: self(x) for k, x in v.items()}
            return {k: x for k, x in out.items() if x is not NO_VALUE}
        if isinstance(v, list):
            return [x for x in (self(e) for e in v) if x is not NO_VALUE]
        return v


def substitute(v, values):
    """Replaces references to resources created through their APIs with those resources' values."""
    fn, arg = intrinsic(v)
    if fn == "Ref" and arg in values:
        return values[arg]["Ref"]
    if fn == "Fn::GetAtt":
        res, attr = arg if isinstance(arg, list) else arg.split(".", 1)
        if res in values:
            return values[res][attr]
    if fn == "Fn::Sub":
        s, local = (arg, None) if isinstance(arg, str) else (arg[0], arg[1])

        def one(m):
            name = m.group(1)
            base, _, attr = name.partition(".")
            if base in values and (local is None or name not in local):
                return str(values[base][attr or "Ref"])
            return m.group(0)
        s = SUB_VAR.sub(one, s)
        return {"Fn::Sub": s if local is None else [s, substitute(local, values)]}
    if isinstance(v, dict):
        return {k: substitute(x, values) for k, x in v.items()}
    if isinstance(v, list):
        return [substitute(x, values) for x in v]
    return v


# ---- deployment ----------------------------------------------------------------------------------------

class Deployment:
    def __init__(self, aws, region, cfn_template, params, stack_name, check):
        self.aws, self.region, self.tpl, self.params = aws, region, cfn_template, params
        self.stack, self.check = stack_name, check
        self.values = {}       # resources created through their APIs: {"Ref": ..., attribute: ...}
        self.in_stack = set()  # resources moto's CloudFormation created
        self.cleanup = []      # API-created resources to remove, last first
        self.outputs = {}
        self.created = False

    def cfn_params(self):
        return [{"ParameterKey": k, "ParameterValue": v} for k, v in self.params.items()]

    def wait(self, stack):
        cfn = self.aws["cloudformation"]
        for _ in range(600):
            s = cfn.describe_stacks(StackName=stack)["Stacks"][0]
            if not s["StackStatus"].endswith("IN_PROGRESS"):
                break
            time.sleep(0.1)
        if s["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            events = cfn.describe_stack_events(StackName=stack)["StackEvents"]
            reasons = [f'{e["LogicalResourceId"]}: {e.get("ResourceStatusReason")}' for e in events
                       if e.get("ResourceStatusReason")]
            raise RuntimeError(f'stack {s["StackStatus"]}: {reasons[:5]}')
        return s

    def conditions(self):
        """Has moto's CloudFormation evaluate every condition (a probe stack, deleted after)."""
        cfn, probe = self.aws["cloudformation"], self.stack + "-conditions"
        conds = self.tpl.get("Conditions", {})
        body = {"Parameters": self.tpl["Parameters"], "Conditions": conds,
                "Resources": {"Nothing": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {f"C{i}": {"Value": {"Fn::If": [c, "true", "false"]}} for i, c in enumerate(conds)}}
        cfn.create_stack(StackName=probe, TemplateBody=json.dumps(body), Parameters=self.cfn_params())
        try:
            out = {o["OutputKey"]: o["OutputValue"] for o in self.wait(probe).get("Outputs", [])}
            return {c: out[f"C{i}"] == "true" for i, c in enumerate(conds)}
        finally:
            cfn.delete_stack(StackName=probe)

    def deploy(self, conds):
        res = self.tpl["Resources"]
        active = {i for i, r in res.items() if "Condition" not in r or conds[r["Condition"]]}
        needs = {i: deps(res[i].get("Properties", {}), conds, res) | set(
            [res[i]["DependsOn"]] if isinstance(res[i].get("DependsOn"), str) else res[i].get("DependsOn", []))
            for i in active}
        # Values of stack resources that API-created resources need: read through synthetic outputs.
        wanted = set()
        for i in active:
            if res[i]["Type"] in UNSUPPORTED or self.mapping_on_consumer(i, conds):
                wanted |= references(res[i].get("Properties", {}), conds, res)
        known = {}  # every resource's values, for resolving the API-created resources' properties
        resolve = Resolver(self.full_params(), conds, known, self.stack, self.region)
        done, pending = set(), set(active)
        while pending:
            ready = {i for i in pending if needs[i] <= done}
            if not ready:
                raise RuntimeError(f"no resource can be created next: {sorted(pending)}")
            api = {i for i in ready if res[i]["Type"] in UNSUPPORTED or self.mapping_on_consumer(i, conds)}
            if ready - api:
                self.in_stack |= ready - api
                self.apply(conds, wanted, done | ready - api)
                for key, (r, attr) in self.synthetic(wanted, done | ready - api).items():
                    known.setdefault(r, {})[attr] = self.outputs[key]
            for i in sorted(api):
                self.values[i] = self.create(i, res[i], resolve(res[i].get("Properties", {})))
                known[i] = self.values[i]
            done |= ready
            pending -= ready
        # The whole template: the outputs that name API-created resources come last.
        self.apply(conds, wanted, done)
        return active

    def full_params(self):
        params = {k: str(p.get("Default", "")) for k, p in self.tpl["Parameters"].items()}
        params.update(self.params)
        for k, p in self.tpl["Parameters"].items():
            if p["Type"] == "CommaDelimitedList":
                params[k] = params[k].split(",")
        return params

    def mapping_on_consumer(self, i, conds):
        r = self.tpl["Resources"][i]
        return r["Type"] == "AWS::Lambda::EventSourceMapping" and "StreamConsumer" in deps(
            r["Properties"]["EventSourceArn"], conds, self.tpl["Resources"])

    def synthetic(self, wanted, present):
        return {f"TestValue{re.sub('[^A-Za-z0-9]', '', r + a)}": (r, a) for r, a in sorted(wanted)
                if r in present and r in self.in_stack}

    def apply(self, conds, wanted, present):
        res = self.tpl["Resources"]
        body = {k: v for k, v in self.tpl.items() if k not in ("Resources", "Outputs")}
        body["Resources"] = {i: substitute(res[i], self.values) for i in sorted(self.in_stack)}
        outputs = {}
        for k, o in self.tpl.get("Outputs", {}).items():
            if "Condition" in o and not conds[o["Condition"]]:
                continue
            if deps(o["Value"], conds, res) <= present:
                outputs[k] = substitute(o, self.values)
        for key, (r, a) in self.synthetic(wanted, present).items():
            outputs[key] = {"Value": {"Ref": r} if a == "Ref" else {"Fn::GetAtt": [r, a]}}
        body["Outputs"] = outputs
        cfn = self.aws["cloudformation"]
        args = dict(StackName=self.stack, TemplateBody=json.dumps(body), Parameters=self.cfn_params(),
                    Capabilities=["CAPABILITY_IAM"])
        if self.created:
            cfn.update_stack(**args)
        else:
            cfn.create_stack(**args)
            self.created = True
        s = self.wait(self.stack)
        self.outputs = {o["OutputKey"]: o["OutputValue"] for o in s.get("Outputs", [])}

    def create(self, logical_id, r, props):
        """Creates one resource moto's CloudFormation lacks, through its own API; returns its values."""
        a, t = self.aws, r["Type"]
        if t == "AWS::Lambda::Alias":
            out = a["lambda"].create_alias(FunctionName=props["FunctionName"], Name=props["Name"],
                                           FunctionVersion=props["FunctionVersion"],
                                           Description=props.get("Description", ""))
            self.cleanup.append(lambda: a["lambda"].delete_alias(FunctionName=props["FunctionName"], Name=props["Name"]))
            return {"Ref": out["AliasArn"]}
        if t == "AWS::Kinesis::StreamConsumer":
            c = a["kinesis"].register_stream_consumer(StreamARN=props["StreamARN"], ConsumerName=props["ConsumerName"])["Consumer"]
            self.cleanup.append(lambda: a["kinesis"].deregister_stream_consumer(ConsumerARN=c["ConsumerARN"]))
            return {"Ref": c["ConsumerARN"], "ConsumerARN": c["ConsumerARN"], "ConsumerName": c["ConsumerName"],
                    "StreamARN": props["StreamARN"]}
        if t == "AWS::SecretsManager::Secret":
            # CloudFormation names an unnamed secret <logical id>-<random>.
            args = {"Name": f"{logical_id}-{self.stack[-12:]}", "Description": props.get("Description", "")}
            if "KmsKeyId" in props:
                args["KmsKeyId"] = props["KmsKeyId"]
            arn = a["secretsmanager"].create_secret(**args)["ARN"]
            self.cleanup.append(lambda: a["secretsmanager"].delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True))
            return {"Ref": arn, "Id": arn}
        if t == "AWS::CloudWatch::Alarm":
            name = f"{self.stack}-{logical_id}"
            a["cloudwatch"].put_metric_alarm(AlarmName=name, **alarm_args(props))
            self.cleanup.append(lambda: a["cloudwatch"].delete_alarms(AlarmNames=[name]))
            return {"Ref": name, "Arn": f"arn:aws:cloudwatch:{self.region}:{ACCOUNT}:alarm:{name}"}
        if t == "AWS::Lambda::EventSourceMapping":
            # On an enhanced fan-out consumer: moto's Lambda takes stream ARNs only. Resolved, not created.
            self.check.facts.append(f"{logical_id} resolved, not created (consumer ARN): {json.dumps(props, sort_keys=True)}")
            return {"Ref": "not-created", "Properties": props}
        raise RuntimeError(f"no API creation for {t}")

    def delete(self):
        cfn = self.aws["cloudformation"]
        for undo in reversed(self.cleanup):
            try_quietly(undo)
        if self.created:
            try_quietly(lambda: cfn.delete_stack(StackName=self.stack))


def alarm_args(p):
    """PutMetricAlarm arguments from AWS::CloudWatch::Alarm properties (CloudFormation passes strings)."""
    out = {}
    for k, v in p.items():
        if k in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            v = int(v)
        elif k == "Threshold":
            v = float(v)
        elif k == "ActionsEnabled":
            v = v in (True, "true")
        elif k == "Metrics":
            v = copy.deepcopy(v)
            for q in v:
                if "MetricStat" in q:
                    q["MetricStat"]["Period"] = int(q["MetricStat"]["Period"])
        out[k] = v
    return out


def plain(v):
    """A value as the API returns it: CloudFormation hands parameters over as strings."""
    if isinstance(v, str) and re.fullmatch(r"-?[0-9]+", v):
        return int(v)
    return {"true": True, "false": False}.get(v, v) if isinstance(v, str) else v


def try_quietly(f):
    try:
        f()
    except Exception:  # cleanup of a shared emulator: best effort
        pass


# ---- one combination -----------------------------------------------------------------------------------

def given_resources(aws, run, n, combo, cleanup):
    """Creates what a combination says is given (stream, secret, KMS key, SNS topic); returns parameters."""
    params = dict(BASE)
    key_arn = None
    for k, v in combo.items():
        if v == "key":
            if key_arn is None:
                key_arn = aws["kms"].create_key(Description=f"kinesis-pulsar deploycheck {run}")["KeyMetadata"]["Arn"]
                cleanup.append(lambda k=key_arn: aws["kms"].schedule_key_deletion(KeyId=k, PendingWindowInDays=7))
            v = key_arn
        elif v == "given" and k in ("StreamArn", "SinkStreamArn"):
            name = f"kp-deploycheck-{run}-{n}" + ("-sink" if k == "SinkStreamArn" else "")
            aws["kinesis"].create_stream(StreamName=name, ShardCount=1)
            cleanup.append(lambda s=name: aws["kinesis"].delete_stream(StreamName=s, EnforceConsumerDeletion=True))
            v = aws["kinesis"].describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
        elif v == "given" and k == "PulsarAuthSecret":
            v = aws["secretsmanager"].create_secret(Name=f"kp-deploycheck-{run}-{n}/pulsar",
                                                    SecretString='{"type":"token","token":"x"}')["ARN"]
            cleanup.append(lambda s=v: aws["secretsmanager"].delete_secret(SecretId=s, ForceDeleteWithoutRecovery=True))
        elif v == "topic":
            v = aws["sns"].create_topic(Name=f"kp-deploycheck-{run}-{n}")["TopicArn"]
            cleanup.append(lambda t=v: aws["sns"].delete_topic(TopicArn=t))
        params[k] = v
    return params


def translate(template_path, params, code_uri):
    sam = yaml_parse(open(template_path).read())
    for r in sam["Resources"].values():
        if r["Type"] == "AWS::Serverless::Function":
            r["Properties"]["CodeUri"] = code_uri

    class NoManagedPolicies:
        def load(self):
            return {}
    return transform(sam, dict(params), NoManagedPolicies())


def run_combination(aws, region, template_path, code_uri, run, n, name, combo):
    check = Check()
    cleanup = []
    stack = f"kp-deploycheck-{run}-{n}"
    dep = None
    try:
        params = given_resources(aws, run, n, combo, cleanup)
        cfn_template = translate(template_path, params, code_uri)
        dep = Deployment(aws, region, cfn_template, params, stack, check)
        conds = dep.conditions()
        check.facts.append("conditions: " + ", ".join(f"{c}={v}" for c, v in sorted(conds.items())))
        active = dep.deploy(conds)
        check.facts.append(f"created by moto's CloudFormation: {sorted(dep.in_stack)}")
        check.facts.append(f"created through their APIs: {sorted(set(active) - dep.in_stack)}")
        verify(aws, dep, conds, dep.full_params(), check)
    except Exception as e:
        check.errors.append(f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}")
    finally:
        if dep is not None:
            dep.delete()
        for undo in reversed(cleanup):
            try_quietly(undo)
    return check


# ---- checks --------------------------------------------------------------------------------------------

def physical(aws, stack):
    out = {}
    for page in aws["cloudformation"].get_paginator("list_stack_resources").paginate(StackName=stack):
        for r in page["StackResourceSummaries"]:
            out[r["LogicalResourceId"]] = r["PhysicalResourceId"]
    return out


def verify(aws, dep, conds, params, check):
    ids = physical(aws, dep.stack)
    o = dep.outputs
    fn_name = o["FunctionName"]
    fn = aws["lambda"].get_function_configuration(FunctionName=fn_name)
    check.eq("function Runtime", fn.get("Runtime"), "provided.al2023")
    check.eq("function Handler", fn.get("Handler"), "bootstrap")
    # moto's CloudFormation drops these: check what the translator handed CloudFormation instead.
    translated = dep.tpl["Resources"]["KinesisToPulsarFunction"]["Properties"]
    check.eq("translated Architectures", translated.get("Architectures"), ["arm64"])
    check.eq("translated LoggingConfig.LogGroup", translated.get("LoggingConfig", {}).get("LogGroup"), {"Ref": "FunctionLogGroup"})
    check.eq("function MemorySize", str(fn.get("MemorySize")), params["MemorySize"])
    check.eq("function Timeout", str(fn.get("Timeout")), params["Timeout"])
    role_name = ids["KinesisToPulsarRole"]
    role_arn = aws["iam"].get_role(RoleName=role_name)["Role"]["Arn"]
    check.eq("function Role", fn.get("Role"), role_arn)
    if conds["HasVpc"]:
        vpc = fn.get("VpcConfig", {})
        check.eq("VpcConfig SubnetIds", sorted(vpc.get("SubnetIds", [])), sorted(params["SubnetIds"]))
        check.eq("VpcConfig SecurityGroupIds", sorted(vpc.get("SecurityGroupIds", [])), sorted(params["SecurityGroupIds"]))
    else:
        check.true(f"VpcConfig without subnets: {fn.get('VpcConfig')}", not fn.get("VpcConfig", {}).get("SubnetIds"))

    # Environment: each variable from its parameter, or from the resource the stack created.
    env = fn.get("Environment", {}).get("Variables", {})
    secret = dep.values.get("StackPulsarAuthSecret", {}).get("Ref") if conds["CreateAuthSecret"] else params["PulsarAuthSecret"]
    table = ids.get("AuditTable", "") if conds["AuditOn"] else ""
    want_env = {"PULSAR_AUTH_SECRET_ARN": secret, "AUDIT_TABLE_NAME": table}
    for k, v in translated["Environment"]["Variables"].items():
        fn_, arg = intrinsic(v)
        if fn_ == "Ref":
            want_env[k] = params[arg]
    check.eq("environment variables", sorted(env), sorted(translated["Environment"]["Variables"]))
    for k, v in want_env.items():
        # moto keeps a Number parameter as a number where Lambda keeps every value as a string.
        check.eq(f"environment {k}", None if env.get(k) is None else str(env.get(k)), v)
    if conds["AuditOn"]:
        t = aws["dynamodb"].describe_table(TableName=table)["Table"]
        check.eq("audit table keys", [k["AttributeName"] for k in t["KeySchema"]], ["pk", "sk"])
        # moto's CloudFormation keeps no TimeToLiveSpecification: the Go unit tests check the template's.
    if secret:
        s = aws["secretsmanager"].describe_secret(SecretId=secret)
        if conds["HasAuthSecretKmsKey"] and conds["CreateAuthSecret"]:
            check.eq("created secret KmsKeyId", s.get("KmsKeyId"), params["PulsarAuthSecretKmsKeyArn"])
        if conds["CreateAuthSecret"]:
            check.true("the created secret has no value yet", "AWSCURRENT" not in json.dumps(s.get("VersionIdsToStages", {})))

    # The role's policy, as moto stored it after resolving the conditions.
    stream_arn = o["KinesisStreamArn"]
    policy = aws["iam"].get_role_policy(RoleName=role_name, PolicyName="kinesis-to-pulsar")["PolicyDocument"]
    if isinstance(policy, str):
        policy = ast.literal_eval(policy)  # moto keeps the document CloudFormation resolved as Python text
    # moto leaves AWS::NoValue in a list as null, where CloudFormation removes the element.
    statements = [s for s in policy["Statement"] if s is not None]
    by_sid = {s["Sid"]: s for s in statements}
    actions = {a for s in statements for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    polling = {"kinesis:GetRecords", "kinesis:GetShardIterator"}
    if conds["UseEnhancedFanOut"]:
        check.true(f"enhanced fan-out grants no polling: {sorted(actions & polling)}", not actions & polling)
        check.eq("SubscribeToShard resource", by_sid.get("ReadThroughConsumer", {}).get("Resource"), o.get("StreamConsumerArn"))
        consumer = aws["kinesis"].describe_stream_consumer(ConsumerARN=o["StreamConsumerArn"])["ConsumerDescription"]
        check.eq("consumer's stream", consumer["StreamARN"], stream_arn)
    else:
        check.eq("polling grant", by_sid.get("PollStream", {}).get("Resource"), stream_arn)
        check.true("no SubscribeToShard without enhanced fan-out", "kinesis:SubscribeToShard" not in actions)
    for sid, cond, key, service in (("DecryptStream", "HasStreamKmsKey", "StreamKmsKeyArn", "kinesis"),
                                    ("DecryptPulsarCredentials", "HasAuthSecretKmsKey", "PulsarAuthSecretKmsKeyArn", "secretsmanager")):
        if conds[cond]:
            s = by_sid.get(sid, {})
            check.eq(f"{sid} resource", s.get("Resource"), params[key])
            check.eq(f"{sid} condition", s.get("Condition"),
                     {"StringEquals": {"kms:ViaService": f"{service}.{dep.region}.amazonaws.com"}})
        else:
            check.true(f"no {sid} without {key}", sid not in by_sid)
    if secret:
        check.eq("secret grant", by_sid.get("ReadPulsarCredentials", {}).get("Resource"), secret)

    # The stream exists (created by moto's CloudFormation, or given). moto's CloudFormation keeps no
    # StreamEncryption: the Go unit tests check the template's.
    aws["kinesis"].describe_stream_summary(StreamARN=stream_arn)

    # The event source mapping, on the alias named after the starting position.
    alias_arn = dep.values["StartingPositionAlias"]["Ref"]
    ts = params["StartingPositionTimestamp"].replace(".", "_")
    want_alias = f"from-{params['StartingPosition']}" + (f"-{ts}" if conds["AtTimestamp"] else "")
    check.eq("alias name", alias_arn.rsplit(":", 1)[1], want_alias)
    queue_arn = o["FailureQueueArn"]
    check.eq("queue behind FailureQueueUrl", aws["sqs"].get_queue_attributes(
        QueueUrl=o["FailureQueueUrl"], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"], queue_arn)
    destination = queue_arn
    if conds["FailuresToS3"]:
        # The bucket keeps the records too; moto's S3 must know it by the name in the outputs.
        aws["s3"].head_bucket(Bucket=o["FailureBucketName"])
        destination = "arn:aws:s3:::" + o["FailureBucketName"]
    want = {"BatchSize": int(params["BatchSize"]), "StartingPosition": params["StartingPosition"],
            "MaximumRetryAttempts": int(params["MaximumRetryAttempts"]),
            "MaximumRecordAgeInSeconds": int(params["MaximumRecordAgeInSeconds"]),
            "ParallelizationFactor": int(params["ParallelizationFactor"]),
            "MaximumBatchingWindowInSeconds": int(params["MaximumBatchingWindowInSeconds"]),
            "BisectBatchOnFunctionError": params["BisectBatchOnFunctionError"] == "true",
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "DestinationConfig": {"OnFailure": {"Destination": destination}}}
    if conds["UseEnhancedFanOut"]:
        m = dep.values["KinesisToPulsarFunctionStream"]["Properties"]
        check.eq("mapping EventSourceArn (resolved)", m["EventSourceArn"], o["StreamConsumerArn"])
        check.eq("mapping FunctionName (resolved)", m["FunctionName"], alias_arn)
        check.eq("mapping Enabled (resolved)", m["Enabled"], params["EventSourceEnabled"])
        if conds["AtTimestamp"]:
            check.eq("mapping StartingPositionTimestamp (resolved)", m.get("StartingPositionTimestamp"),
                     params["StartingPositionTimestamp"])
    else:
        mappings = aws["lambda"].list_event_source_mappings(FunctionName=alias_arn)["EventSourceMappings"]
        mappings = [m for m in mappings if m["EventSourceArn"] == stream_arn]
        check.eq("mappings of the alias on the stream", len(mappings), 1)
        if not mappings:
            return
        m = mappings[0]
        check.facts.append("mapping as moto keeps it: " + json.dumps(
            {k: v for k, v in m.items() if k not in ("LastModified", "UUID", "EventSourceMappingArn")}, sort_keys=True, default=str))
        check.eq("mapping State", m.get("State"), "Enabled" if params["EventSourceEnabled"] == "true" else "Disabled")
    for k, v in want.items():
        check.eq(f"mapping {k}", plain(m.get(k)), v)

    # Alarms: every dimension names something that exists; actions go to the topic when one is given.
    alarms = aws["cloudwatch"].describe_alarms(AlarmNamePrefix=dep.stack + "-")["MetricAlarms"]
    want_alarms = sorted(i for i, r in dep.tpl["Resources"].items()
                         if r["Type"] == "AWS::CloudWatch::Alarm" and ("Condition" not in r or conds[r["Condition"]]))
    check.eq("alarms", sorted(a["AlarmName"][len(dep.stack) + 1:] for a in alarms), want_alarms)
    stream_name = stream_arn.split(":stream/")[1]
    queue_name = o["FailureQueueUrl"].rsplit("/", 1)[1]
    seen_dims = set()
    for a in alarms:
        metrics = [a] if "MetricName" in a else [q["MetricStat"]["Metric"] for q in a.get("Metrics", []) if "MetricStat" in q]
        for m in metrics:
            for d in m.get("Dimensions", []):
                seen_dims.add(d["Name"])
                alarm_id = a["AlarmName"][len(dep.stack) + 1:]
                want_value = {"FunctionName": o.get("SinkFunctionName") if alarm_id.startswith("Sink") else fn_name,
                              "QueueName": queue_name, "StreamName": stream_name,
                              "BucketName": o.get("FailureBucketName"), "FilterId": "FailedBatches"}.get(d["Name"])
                check.eq(f'{a["AlarmName"]} {m["MetricName"]} {d["Name"]}', d["Value"], want_value)
        topic = [params["AlarmTopicArn"]] if params["AlarmTopicArn"] else []
        check.eq(f'{a["AlarmName"]} AlarmActions', a.get("AlarmActions", []), topic)
        check.eq(f'{a["AlarmName"]} OKActions', a.get("OKActions", []), topic)
        if a["AlarmName"].endswith("-MappingIdleAlarm"):
            check.eq("MappingIdleAlarm ActionsEnabled", a.get("ActionsEnabled"), params["EventSourceEnabled"] == "true")
        if a["AlarmName"].endswith("-RecordsFailedAlarm"):
            check.eq("RecordsFailedAlarm M of N", (a.get("DatapointsToAlarm"), a.get("EvaluationPeriods")),
                     (int(params["FailedRecordsAlarmDatapoints"]), int(params["FailedRecordsAlarmPeriods"])))
    check.eq("alarm dimensions seen", sorted(seen_dims),
             sorted(["FunctionName", "QueueName", "StreamName"] + (["BucketName", "FilterId"] if conds["FailuresToS3"] else [])))
    check.true(f"the stream named by the alarms exists: {stream_name}",
               aws["kinesis"].describe_stream_summary(StreamName=stream_name)["StreamDescriptionSummary"]["StreamARN"] == stream_arn)

    # The sink: its function reads the stack's parameters; its schedule starts it.
    if conds["SinkOn"]:
        sink = aws["lambda"].get_function_configuration(FunctionName=o["SinkFunctionName"])
        env = sink.get("Environment", {}).get("Variables", {})
        for var, param in (("KINESIS_STREAM_ARN", "SinkStreamArn"), ("SINK_TOPICS", "SinkTopics"),
                           ("SINK_SUBSCRIPTION", "SinkSubscription"), ("KINESIS_ORDERING", "SinkOrdering"),
                           ("PULSAR_SERVICE_URL", "PulsarServiceUrl")):
            want = params[param]
            check.eq(f"sink environment {var}", plain(env.get(var)), ",".join(want) if isinstance(want, list) else want)
        check.eq("sink Timeout", sink.get("Timeout"), int(params["SinkTimeout"]))
        schedules = [r for r in dep.tpl["Resources"].values() if r["Type"] == "AWS::Scheduler::Schedule"]
        check.eq("sink schedules in the translated template", len(schedules), 1)
        if schedules:
            check.eq("sink schedule expression", schedules[0]["Properties"].get("ScheduleExpression"), {"Ref": "SinkSchedule"})

    # The dashboard: valid JSON, this function, these alarms.
    board = json.loads(aws["cloudwatch"].get_dashboard(DashboardName=ids["Dashboard"])["DashboardBody"])
    fn_values = {row[i + 1] for w in board["widgets"] for row in w["properties"].get("metrics", [])
                 for i, c in enumerate(row) if c == "FunctionName"}
    check.eq("dashboard FunctionName values", fn_values, {fn_name})
    listed = [w for w in board["widgets"] if w["type"] == "alarm"][0]["properties"]["alarms"]
    # The dashboard lists the alarms every stack has (its body is one string, without conditions).
    unconditional = {dep.stack + "-" + i for i, r in dep.tpl["Resources"].items()
                     if r["Type"] == "AWS::CloudWatch::Alarm" and "Condition" not in r}
    check.eq("dashboard alarms", sorted(x.rsplit(":", 1)[1] for x in listed),
             sorted(a["AlarmName"] for a in alarms if a["AlarmName"] in unconditional))

    # Outputs: those whose condition holds, none other.
    want_outputs = sorted(k for k, v in dep.tpl["Outputs"].items() if "Condition" not in v or conds[v["Condition"]])
    check.eq("outputs", sorted(k for k in o if not k.startswith("TestValue")), want_outputs)


def main():
    template_path, run = sys.argv[1], sys.argv[2]
    combinations = COMBINATIONS + samconfig_combinations(os.path.join(os.path.dirname(template_path), "samconfig.toml"))
    aws, region = clients()
    bucket = f"kp-deploycheck-{run}"
    aws["s3"].create_bucket(Bucket=bucket)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("bootstrap", "not run: the emulator never invokes it\n")
    aws["s3"].put_object(Bucket=bucket, Key="kinesis-to-pulsar.zip", Body=buf.getvalue())
    try:
        for n, (name, combo) in enumerate(combinations):
            check = run_combination(aws, region, template_path, f"s3://{bucket}/kinesis-to-pulsar.zip", run, n, name, combo)
            print(json.dumps({"name": name, "parameters": combo, "errors": check.errors, "facts": check.facts}), flush=True)
    finally:
        try_quietly(lambda: aws["s3"].delete_object(Bucket=bucket, Key="kinesis-to-pulsar.zip"))
        try_quietly(lambda: aws["s3"].delete_bucket(Bucket=bucket))
    print(json.dumps({"limits": EMULATOR_LIMITS}), flush=True)


if __name__ == "__main__":
    main()
