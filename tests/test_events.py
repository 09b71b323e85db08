"""Events: the sample library (every sample rendered, checked against its service's documented
fields and sent through a real function), saved events in a function's folder, the Lambda
console's shareable test events, and `workbench events`."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Server, lambda_client, run_workbench
from workbench.core.saved_events import console as console_events
from workbench.core.saved_events import store as events
from workbench.core.saved_events.catalog import get_sample, list_samples, render_sample, sample_root
from workbench.core.saved_events.store import EventError

SAMPLES = [s.name for s in list_samples()]

# -- what each service documents its events to carry ----------------------------------------
# Paths are /-separated (list indexes as numbers); a value is either the exact expected value
# or a predicate. The most specific key wins: "service/event" over "service".

Path_ = str | tuple[str | int, ...]
Check = str | tuple[Path_, Any]
RABBIT = ("rmqMessagesByQueue", "orders::/", 0)  # the key holds a /
RECORDS_S3: list[Check] = [
    "Records/0/eventTime",
    "Records/0/eventName",
    "Records/0/s3/bucket/name",
    "Records/0/s3/object/key",
    "Records/0/s3/bucket/arn",
    ("Records/0/eventSource", "aws:s3"),
    ("Records/0/eventVersion", "2.1"),
]
EVENTBRIDGE: list[Check] = [
    "version",
    "id",
    "detail-type",
    "source",
    "account",
    "time",
    "region",
    "resources",
    "detail",
]
WEBSOCKET: list[Check] = [
    "requestContext/connectionId",
    "requestContext/routeKey",
    "requestContext/eventType",
    "requestContext/connectedAt",
    "requestContext/requestTimeEpoch",
    "requestContext/apiId",
    ("isBase64Encoded", False),
]
COGNITO: list[Check] = [
    ("version", "1"),
    "triggerSource",
    "region",
    "userPoolId",
    "userName",
    "callerContext/awsSdkVersion",
    "callerContext/clientId",
    "request/userAttributes",
    "response",
]
CLOUDFRONT: list[Check] = [
    "Records/0/cf/config/distributionId",
    "Records/0/cf/config/distributionDomainName",
    "Records/0/cf/config/requestId",
    "Records/0/cf/request/uri",
    "Records/0/cf/request/method",
    "Records/0/cf/request/headers/host/0/value",
    "Records/0/cf/request/clientIp",
    "Records/0/cf/request/querystring",
]
CFN: list[Check] = [
    "RequestType",
    "ServiceToken",
    "ResponseURL",
    "StackId",
    "RequestId",
    "LogicalResourceId",
    "ResourceType",
    "ResourceProperties/ServiceToken",
]
CONFIG: list[Check] = [
    ("invokingEvent", lambda v: isinstance(json.loads(v), dict)),
    ("ruleParameters", lambda v: isinstance(json.loads(v), dict)),
    "resultToken",
    ("eventLeftScope", False),
    "executionRoleArn",
    "configRuleArn",
    "configRuleName",
    "configRuleId",
    "accountId",
    "version",
]
KAFKA: list[Check] = [
    "bootstrapServers",
    "records/orders-0/0/topic",
    "records/orders-0/0/partition",
    "records/orders-0/0/offset",
    "records/orders-0/0/timestamp",
    "records/orders-0/0/timestampType",
    "records/orders-0/0/key",
    "records/orders-0/0/value",
    ("records/orders-0/0/headers/0/source", list),
]
ALEXA: list[Check] = [
    ("version", "1.0"),
    "session/sessionId",
    "session/application/applicationId",
    "session/user/userId",
    "context/System/device/deviceId",
    "request/type",
    "request/requestId",
    "request/timestamp",
    "request/locale",
]

REQUIRED: dict[str, list[Check]] = {
    "alb/request": [
        "requestContext/elb/targetGroupArn",
        "httpMethod",
        "path",
        "headers/host",
        "queryStringParameters",
        "body",
        ("isBase64Encoded", False),
    ],
    "alb/request-multi-value": [
        "requestContext/elb/targetGroupArn",
        "httpMethod",
        "path",
        ("multiValueHeaders/host", list),
        ("multiValueQueryStringParameters/page", ["1"]),
        "body",
    ],
    "apigateway/aws-proxy": [
        "resource",
        "path",
        "httpMethod",
        "headers",
        "multiValueHeaders",
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters/proxy",
        "stageVariables",
        "requestContext/requestId",
        "requestContext/stage",
        "requestContext/identity/sourceIp",
        ("requestContext/requestTimeEpoch", int),
        "body",
        ("isBase64Encoded", False),
    ],
    "apigateway/http-api-proxy": [
        ("version", "2.0"),
        "routeKey",
        "rawPath",
        "rawQueryString",
        "headers",
        "requestContext/http/method",
        "requestContext/http/sourceIp",
        "requestContext/requestId",
        ("requestContext/timeEpoch", int),
        "body",
        ("isBase64Encoded", False),
    ],
    "apigateway/authorizer": [
        ("type", "TOKEN"),
        "authorizationToken",
        ("methodArn", lambda v: v.startswith("arn:aws:execute-api:")),
    ],
    "apigateway/request-authorizer": [
        ("type", "REQUEST"),
        "methodArn",
        "resource",
        "path",
        "httpMethod",
        "headers/Authorization",
        "pathParameters/id",
        "requestContext/requestId",
    ],
    "apigateway/http-api-authorizer": [
        ("version", "2.0"),
        ("type", "REQUEST"),
        "routeArn",
        ("identitySource", list),
        "routeKey",
        "requestContext/http/method",
    ],
    "apigateway/websocket-connect": [
        *WEBSOCKET,
        ("requestContext/eventType", "CONNECT"),
        "headers/Sec-WebSocket-Key",
    ],
    "apigateway/websocket-message": [
        *WEBSOCKET,
        ("requestContext/eventType", "MESSAGE"),
        "requestContext/messageId",
        "body",
    ],
    "apigateway/websocket-disconnect": [
        *WEBSOCKET,
        ("requestContext/eventType", "DISCONNECT"),
        ("requestContext/disconnectStatusCode", int),
    ],
    "function-url": [
        ("version", "2.0"),
        ("routeKey", "$default"),
        "rawPath",
        "headers",
        ("requestContext/domainName", lambda v: v.endswith(".on.aws")),
        "requestContext/http/method",
        ("requestContext/timeEpoch", int),
    ],
    "s3/put": [
        *RECORDS_S3,
        ("Records/0/s3/object/size", int),
        "Records/0/s3/object/eTag",
        ("Records/0/eventName", "ObjectCreated:Put"),
    ],
    "s3/delete": [*RECORDS_S3, ("Records/0/eventName", "ObjectRemoved:Delete")],
    "s3/batch-invocation": [
        ("invocationSchemaVersion", "1.0"),
        "invocationId",
        "job/id",
        "tasks/0/taskId",
        "tasks/0/s3Key",
        "tasks/0/s3BucketArn",
    ],
    "s3/batch-invocation-v2": [
        ("invocationSchemaVersion", "2.0"),
        "invocationId",
        "job/id",
        ("job/userArguments", dict),
        "tasks/0/s3Key",
        "tasks/0/s3Bucket",
    ],
    "sqs": [
        "Records/0/messageId",
        "Records/0/receiptHandle",
        "Records/0/body",
        "Records/0/md5OfBody",
        "Records/0/attributes/SentTimestamp",
        "Records/0/attributes/ApproximateReceiveCount",
        "Records/0/messageAttributes",
        ("Records/0/eventSource", "aws:sqs"),
        "Records/0/eventSourceARN",
        "Records/0/awsRegion",
    ],
    "sns": [
        ("Records/0/EventSource", "aws:sns"),
        "Records/0/EventSubscriptionArn",
        "Records/0/Sns/MessageId",
        "Records/0/Sns/Message",
        "Records/0/Sns/TopicArn",
        "Records/0/Sns/Timestamp",
        ("Records/0/Sns/Type", "Notification"),
        "Records/0/Sns/Signature",
        "Records/0/Sns/SigningCertUrl",
    ],
    "dynamodb": [
        ("Records/0/eventSource", "aws:dynamodb"),
        "Records/0/eventID",
        ("Records/0/eventName", lambda v: v in ("INSERT", "MODIFY", "REMOVE")),
        ("Records/0/dynamodb/Keys/id", {"S": "42"}),
        ("Records/0/dynamodb/SizeBytes", int),
        "Records/0/dynamodb/SequenceNumber",
        "Records/0/dynamodb/StreamViewType",
        "Records/0/eventSourceARN",
        ("Records/0/dynamodb/ApproximateCreationDateTime", int),
    ],
    "kinesis": [
        ("Records/0/eventSource", "aws:kinesis"),
        "Records/0/kinesis/data",
        "Records/0/kinesis/partitionKey",
        "Records/0/kinesis/sequenceNumber",
        ("Records/0/kinesis/approximateArrivalTimestamp", float),
        "Records/0/eventID",
        "Records/0/eventSourceARN",
    ],
    "firehose": [
        "invocationId",
        "deliveryStreamArn",
        "region",
        "records/0/recordId",
        "records/0/data",
        ("records/0/approximateArrivalTimestamp", int),
    ],
    "eventbridge": EVENTBRIDGE,
    "cloudwatch/scheduled-event": [
        *EVENTBRIDGE,
        ("detail-type", "Scheduled Event"),
        ("source", "aws.events"),
    ],
    "cloudwatch/logs": [("awslogs/data", str)],
    "cloudwatch/alarm": [
        ("source", "aws.cloudwatch"),
        "alarmArn",
        "accountId",
        "time",
        "alarmData/alarmName",
        "alarmData/state/value",
        ("alarmData/state/reasonData", lambda v: json.loads(v)["threshold"]),
        "alarmData/previousState/value",
        "alarmData/configuration/metrics",
    ],
    "cognito-user-pool": COGNITO,
    "cognito-user-pool/user-migration": [c for c in COGNITO if c != "request/userAttributes"]
    + ["request/password"],
    "ses": [
        ("Records/0/eventSource", "aws:ses"),
        "Records/0/ses/mail/messageId",
        "Records/0/ses/mail/source",
        "Records/0/ses/mail/commonHeaders/subject",
        ("Records/0/ses/receipt/action/type", "Lambda"),
        "Records/0/ses/receipt/recipients",
    ],
    "cloudfront/viewer-request": [*CLOUDFRONT, ("Records/0/cf/config/eventType", "viewer-request")],
    "cloudfront/origin-request": [
        *CLOUDFRONT,
        "Records/0/cf/request/origin/custom/domainName",
        ("Records/0/cf/config/eventType", "origin-request"),
    ],
    "cloudfront/origin-response": [
        *CLOUDFRONT,
        "Records/0/cf/response/status",
        ("Records/0/cf/config/eventType", "origin-response"),
    ],
    "cloudfront/viewer-response": [
        *CLOUDFRONT,
        "Records/0/cf/response/status",
        ("Records/0/cf/config/eventType", "viewer-response"),
    ],
    "stepfunctions/error": ["Error", ("Cause", lambda v: json.loads(v)["errorMessage"])],
    "stepfunctions/execution-status-change": [
        *EVENTBRIDGE,
        ("source", "aws.states"),
        "detail/executionArn",
        "detail/status",
    ],
    "kafka/msk": [("eventSource", "aws:kafka"), "eventSourceArn", *KAFKA],
    "kafka/self-managed": [("eventSource", "SelfManagedKafka"), *KAFKA],
    "mq/activemq": [
        ("eventSource", "aws:mq"),
        "eventSourceArn",
        "messages/0/messageID",
        "messages/0/messageType",
        "messages/0/data",
        "messages/0/destination",
        ("messages/0/timestamp", int),
    ],
    "mq/rabbitmq": [
        ("eventSource", "aws:rmq"),
        "eventSourceArn",
        ((*RABBIT, "data"), str),
        ((*RABBIT, "basicProperties", "bodySize"), int),
    ],
    "iot/rule-message": ["topic", ("timestamp", int), "clientId"],
    "iot/custom-authorizer": [
        ("signatureVerified", bool),
        ("protocols", list),
        "protocolData/mqtt/clientId",
        "protocolData/mqtt/password",
        "connectionMetadata/id",
    ],
    "config": CONFIG,
    "codepipeline": [
        "CodePipeline.job/id",
        "CodePipeline.job/accountId",
        "CodePipeline.job/data/actionConfiguration/configuration/FunctionName",
        "CodePipeline.job/data/inputArtifacts/0/location/s3Location/bucketName",
        "CodePipeline.job/data/outputArtifacts/0/location/s3Location/objectKey",
        "CodePipeline.job/data/artifactCredentials/sessionToken",
    ],
    "codecommit": [
        ("Records/0/eventSource", "aws:codecommit"),
        "Records/0/eventSourceARN",
        "Records/0/codecommit/references/0/commit",
        "Records/0/codecommit/references/0/ref",
        "Records/0/eventTriggerName",
    ],
    "secretsmanager": [("Step", "createSecret"), "SecretId", "ClientRequestToken"],
    "lex": [
        ("messageVersion", "1.0"),
        "invocationSource",
        "userId",
        "bot/name",
        "currentIntent/name",
        "currentIntent/slots",
        "outputDialogMode",
        "inputTranscript",
    ],
    "lex-v2": [
        ("messageVersion", "1.0"),
        "invocationSource",
        "inputMode",
        "sessionId",
        "bot/id",
        "bot/localeId",
        "interpretations/0/intent/name",
        "sessionState/intent/name",
        "sessionState/intent/state",
        ("sessionState/intent/slots/FlowerType/value/interpretedValue", "roses"),
    ],
    "alexa-skills-kit": ALEXA,
    "alexa-skills-kit/intent": [*ALEXA, ("request/type", "IntentRequest"), "request/intent/name"],
    "alexa-smart-home": [
        ("directive/header/namespace", "Alexa.Discovery"),
        ("directive/header/payloadVersion", "3"),
        "directive/header/messageId",
        "directive/payload/scope/token",
    ],
    "cloudformation/create-request": [*CFN, ("RequestType", "Create")],
    "cloudformation/update-request": [
        *CFN,
        ("RequestType", "Update"),
        "PhysicalResourceId",
        "OldResourceProperties/ServiceToken",
    ],
    "cloudformation/delete-request": [*CFN, ("RequestType", "Delete"), "PhysicalResourceId"],
    "appsync/direct-resolver": [
        ("arguments", dict),
        "identity",
        "info/fieldName",
        "info/parentTypeName",
        "info/selectionSetList",
        "request/headers",
    ],
    "appsync/authorizer": [
        "authorizationToken",
        "requestContext/apiId",
        "requestContext/accountId",
        "requestContext/requestId",
        "requestContext/queryString",
        "requestHeaders",
    ],
    "connect": [
        ("Name", "ContactFlowEvent"),
        "Details/ContactData/ContactId",
        "Details/ContactData/InstanceARN",
        "Details/ContactData/CustomerEndpoint/Address",
        ("Details/Parameters", dict),
    ],
    "codedeploy": ["DeploymentId", "LifecycleEventHookExecutionId"],
    "documentdb": [
        ("eventSource", "aws:docdb"),
        "eventSourceArn",
        "events/0/event/operationType",
        "events/0/event/ns/db",
        "events/0/event/documentKey/_id",
        "events/0/event/clusterTime",
    ],
}


def rules_for(name: str) -> list[Check]:
    return REQUIRED.get(name) or REQUIRED[name.split("/")[0]]


def at(event: Any, path: Path_) -> Any:
    node = event
    for part in path.split("/") if isinstance(path, str) else path:
        if isinstance(node, list):
            node = node[int(part)]
        else:
            assert isinstance(node, dict) and part in node, f"missing {path!r} (at {part!r})"
            node = node[part]
    return node


def check(event: Any, rule: Check) -> None:
    path, expected = (rule, None) if isinstance(rule, str) else rule
    value = at(event, path)
    if isinstance(expected, type):
        assert isinstance(value, expected), f"{path}: {value!r} is not {expected.__name__}"
    elif callable(expected):
        assert expected(value), f"{path}: {value!r}"
    elif expected is not None or not isinstance(rule, str):
        assert value == expected, f"{path}: {value!r} != {expected!r}"


# -- the library -----------------------------------------------------------------------------


def test_the_library_is_big_enough() -> None:
    services = {name.split("/")[0] for name in SAMPLES}
    assert len(SAMPLES) >= 60, len(SAMPLES)
    assert len(services) >= 25, sorted(services)


def test_every_sample_has_a_rule_and_metadata() -> None:
    for name in SAMPLES:
        assert name in REQUIRED or name.split("/")[0] in REQUIRED, f"no required fields for {name}"
        sample = get_sample(name)
        assert sample.title and sample.title != name and sample.description, name
        assert sample.template_path.with_name(
            sample.template_path.name.replace(".json", ".meta.json")
        ).is_file()
        for param in sample.params:
            assert param.help, f"{name}: parameter {param.name} has no help"


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_renders_with_its_documented_fields(name: str) -> None:
    event = render_sample(name)
    text = json.dumps(event)
    assert json.loads(text) == event
    assert not re.search(r"\{\{\w+\}\}", text), "a placeholder was left in"
    for rule in rules_for(name):
        check(event, rule)


SAM_NAMES = [
    "alb/request",
    "alexa-skills-kit/end-session",
    "alexa-skills-kit/start-session",
    "alexa-smart-home/smart-home-discovery-request",
    "apigateway/authorizer",
    "apigateway/aws-proxy",
    "apigateway/http-api-proxy",
    "apigateway/request-authorizer",
    "appsync/direct-resolver",
    "cloudformation/create-request",
    "cloudwatch/logs",
    "cloudwatch/scheduled-event",
    "codecommit/repository",
    "codepipeline/job",
    "config/item-change-notification",
    "config/oversized-item-change-notification",
    "config/periodic-rule",
    "connect/contact-flow-event",
    "dynamodb/update",
    "kinesis/get-records",
    "kinesis/kinesis-firehose",
    "kinesis/streams-as-source",
    "kinesis/cloudwatch-logs-processor",
    "lex/book-car",
    "s3/batch-invocation",
    "s3/delete",
    "s3/put",
    "ses/email-receiving",
    "sns/notification",
    "sqs/receive-message",
    "stepfunctions/error",
]


@pytest.mark.parametrize("name", SAM_NAMES)
def test_sam_generate_event_names_work(name: str) -> None:
    service, event = name.split("/")
    assert get_sample(f"{service} {event}") is get_sample(name)


def test_an_alias_renders_its_sample() -> None:
    event = render_sample("kinesis/kinesis-firehose", {"data": "via alias"})
    assert base64.b64decode(event["records"][0]["data"]) == b"via alias"
    assert "kinesis" in {s.service for s in list_samples("kinesis")}
    assert "firehose/transform" in [s.name for s in list_samples("kinesis")]


# -- derived values ----------------------------------------------------------------------------


def test_sqs_md5_of_body_is_the_md5_of_the_body() -> None:
    body = '{"order": 7, "note": "äöü"}'
    record = render_sample("sqs/receive-message", {"body": body})["Records"][0]
    assert record["body"] == body
    assert record["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    fifo = render_sample("sqs/receive-message-fifo", {"body": body})["Records"][0]
    assert fifo["md5OfBody"] == hashlib.md5(body.encode()).hexdigest()
    assert fifo["attributes"]["MessageDeduplicationId"] == hashlib.sha256(body.encode()).hexdigest()


@pytest.mark.parametrize(
    "name,path",
    [
        ("kinesis/get-records", "Records/0/kinesis/data"),
        ("firehose/transform", "records/0/data"),
        ("firehose/kinesis-source", "records/0/data"),
        ("mq/activemq", "messages/0/data"),
        ("mq/rabbitmq", (*RABBIT, "data")),
    ],
)
def test_base64_data_decodes_to_the_parameter(name: str, path: Path_) -> None:
    event = render_sample(name, {"data": "payload ✓ 42"})
    assert base64.b64decode(at(event, path)).decode() == "payload ✓ 42"


def test_kinesis_event_id_and_sequence_agree() -> None:
    record = render_sample("kinesis/get-records", {"shard": "shardId-000000000007"})["Records"][0]
    assert record["eventID"] == f"shardId-000000000007:{record['kinesis']['sequenceNumber']}"


@pytest.mark.parametrize(
    "name,path",
    [("cloudwatch/logs", "awslogs/data"), ("firehose/cloudwatch-logs-processor", "records/0/data")],
)
def test_cloudwatch_logs_data_really_decodes(name: str, path: str) -> None:
    event = render_sample(
        name,
        {
            "message": "first line\nsecond line",
            "account": "111122223333",
            "log_group": "/aws/lambda/orders",
        },
    )
    payload = json.loads(gzip.decompress(base64.b64decode(at(event, path))))
    assert payload["messageType"] == "DATA_MESSAGE"
    assert payload["owner"] == "111122223333"
    assert payload["logGroup"] == "/aws/lambda/orders"
    assert [e["message"] for e in payload["logEvents"]] == ["first line", "second line"]
    assert all(isinstance(e["timestamp"], int) and e["id"].isdigit() for e in payload["logEvents"])


def test_s3_put_size_etag_and_url_encoded_key() -> None:
    event = render_sample(
        "s3/put", {"bucket": "photos", "key": "2024/my cat.jpg", "content": "meow"}
    )
    s3 = event["Records"][0]["s3"]
    assert s3["bucket"] == {
        "name": "photos",
        "ownerIdentity": s3["bucket"]["ownerIdentity"],
        "arn": "arn:aws:s3:::photos",
    }
    assert s3["object"]["key"] == "2024/my+cat.jpg"
    assert s3["object"]["size"] == 4
    assert s3["object"]["eTag"] == hashlib.md5(b"meow").hexdigest()


def test_http_api_headers_and_query_follow_the_parameters() -> None:
    event = render_sample(
        "apigateway/http-api-proxy", {"body": "abcdé", "query_string": "a=1&a=2&b=x"}
    )
    assert event["headers"]["content-length"] == str(len("abcdé".encode()))
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x"}
    rest = render_sample("apigateway/aws-proxy", {"query_string": "a=1&a=2", "path": "/x/y"})
    assert rest["queryStringParameters"] == {"a": "2"}
    assert rest["multiValueQueryStringParameters"] == {"a": ["1", "2"]}
    assert rest["pathParameters"] == {"proxy": "x/y"}
    assert rest["requestContext"]["path"] == "/prod/x/y"
    empty = render_sample("apigateway/aws-proxy", {"query_string": ""})
    assert empty["queryStringParameters"] is None


def test_dynamodb_images_keys_and_size_come_from_plain_items() -> None:
    item = {"pk": "user#1", "sk": "order#9", "n": 3, "ok": True, "tags": ["a"], "m": {"x": None}}
    record = render_sample("dynamodb/insert", {"item": json.dumps(item), "key": "pk,sk"})
    ddb = record["Records"][0]["dynamodb"]
    assert ddb["Keys"] == {"pk": {"S": "user#1"}, "sk": {"S": "order#9"}}
    assert ddb["NewImage"] == {
        "pk": {"S": "user#1"},
        "sk": {"S": "order#9"},
        "n": {"N": "3"},
        "ok": {"BOOL": True},
        "tags": {"L": [{"S": "a"}]},
        "m": {"M": {"x": {"NULL": True}}},
    }
    assert ddb["SizeBytes"] > len("user#1order#9")
    with pytest.raises(EventError, match="no key attribute id"):
        render_sample("dynamodb/insert", {"item": '{"pk": "1"}'})


def test_json_in_strings_parses_back() -> None:
    config = render_sample(
        "config/item-change-notification",
        {"rule_parameters": '{"maxAge": "90"}', "instance_type": "m5.large"},
    )
    invoking = json.loads(config["invokingEvent"])
    assert invoking["configurationItem"]["configuration"]["instanceType"] == "m5.large"
    assert json.loads(config["ruleParameters"]) == {"maxAge": "90"}
    error = render_sample("stepfunctions/error", {"error": "Boom", "message": "it broke"})
    assert json.loads(error["Cause"])["errorType"] == "Boom"


def test_timestamps_are_now_in_each_services_format() -> None:
    now = time.time()
    sqs = render_sample("sqs/receive-message")["Records"][0]["attributes"]
    assert abs(int(sqs["SentTimestamp"]) / 1000 - now) < 60
    bridge = render_sample("eventbridge/custom-event")
    stamp = datetime.strptime(bridge["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(stamp.timestamp() - now) < 60
    rest = render_sample("apigateway/aws-proxy")["requestContext"]
    assert abs(rest["requestTimeEpoch"] / 1000 - now) < 60
    clf = datetime.strptime(rest["requestTime"], "%d/%b/%Y:%H:%M:%S %z")
    assert abs(clf.timestamp() - now) < 60
    kinesis = render_sample("kinesis/get-records")["Records"][0]["kinesis"]
    assert abs(kinesis["approximateArrivalTimestamp"] - now) < 60


def test_fresh_ids_differ_between_renders() -> None:
    first, second = (render_sample("sqs/receive-message")["Records"][0] for _ in range(2))
    assert first["messageId"] != second["messageId"]
    assert first["receiptHandle"] != second["receiptHandle"]
    a, b = (render_sample("apigateway/aws-proxy")["requestContext"] for _ in range(2))
    assert a["requestId"] != b["requestId"]


def test_params_change_the_output() -> None:
    default = render_sample("sns/notification")["Records"][0]["Sns"]
    custom = render_sample(
        "sns/notification",
        {"topic": "alerts", "message": "hi", "region": "eu-west-1", "account": "111122223333"},
    )
    sns = custom["Records"][0]["Sns"]
    assert default["TopicArn"] == "arn:aws:sns:us-east-1:123456789012:my-topic"
    assert sns["TopicArn"] == "arn:aws:sns:eu-west-1:111122223333:alerts"
    assert sns["Message"] == "hi"
    assert "eu-west-1" in sns["SigningCertUrl"]
    assert (
        render_sample("apigateway/websocket-disconnect", {"status-code": "1006"})["requestContext"][
            "disconnectStatusCode"
        ]
        == 1006
    )


def test_bad_parameters_say_what_is_valid() -> None:
    with pytest.raises(
        EventError,
        match=r"no parameter 'bukcet' \(did you mean bucket\?\); "
        r"its parameters: bucket, key",
    ):
        render_sample("s3/put", {"bukcet": "x"})
    with pytest.raises(EventError, match="not an integer"):
        render_sample("kafka/msk", {"partition": "first"})
    with pytest.raises(EventError, match="not valid JSON"):
        render_sample("eventbridge/custom-event", {"detail": "{oops"})
    with pytest.raises(EventError, match="not a number"):
        render_sample("iot/rule-message", {"temperature": "warm"})


def test_bad_names_say_what_is_close() -> None:
    with pytest.raises(EventError, match="did you mean s3/put"):
        get_sample("s3/pt")
    with pytest.raises(EventError, match="sqs has: sqs/receive-message"):
        get_sample("sqs/nothing-like-it")
    with pytest.raises(EventError, match=r"did you mean kinesis\?"):
        list_samples("kinesiss")


def test_samples_are_found_in_the_wheel_layout_first(tmp_path: Path) -> None:
    package = tmp_path / "site-packages" / "workbench"
    (package / "_data" / "sample_events").mkdir(parents=True)
    assert sample_root(package) == package / "_data" / "sample_events"
    checkout = tmp_path / "repo"
    (checkout / "workbench").mkdir(parents=True)
    (checkout / "sample_events").mkdir()
    assert sample_root(checkout / "workbench") == checkout / "sample_events"
    with pytest.raises(EventError, match="sample events are missing"):
        sample_root(tmp_path / "nowhere" / "workbench")
    assert sample_root() == Path(__file__).resolve().parent.parent / "sample_events"


# -- every sample through a real function ------------------------------------------------------


@pytest.fixture(scope="module")
def echo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Any]]:
    folder = tmp_path_factory.mktemp("fns") / "event-echo"
    folder.mkdir()
    (folder / "app.py").write_text("def handler(event, context):\n    return event\n")
    server = Server(str(folder), "--port", "0", "--quiet")
    try:
        yield server, lambda_client(server.url)
    finally:
        server.stop()


@pytest.mark.parametrize("name", SAMPLES)
def test_sample_reaches_the_function_exactly(echo_server: tuple[Server, Any], name: str) -> None:
    _, client = echo_server
    event = render_sample(name)
    resp = client.invoke(FunctionName="event-echo", Payload=json.dumps(event).encode())
    assert "FunctionError" not in resp, resp["Payload"].read()
    assert json.loads(resp["Payload"].read()) == event


# -- saved events -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "../escape",
        "a/b",
        ".hidden",
        "-dash",
        "x" * 101,
        "CON",
        "nul.txt",
        "trailing.",
        "spa ce",
        "new\nline",
        "a\\b",
    ],
)
def test_unsafe_names_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(EventError, match="cannot name a saved event"):
        events.save_event(tmp_path, bad, {})
    assert list(tmp_path.iterdir()) == []


def test_saved_event_file_is_exactly_what_is_sent(tmp_path: Path) -> None:
    event = {"b": 1, "a": ["ü", None, 2.5], "nested": {"z": True}}
    path = events.save_event(
        tmp_path, "order-1", event, {"description": "paid order", "expected": {"statusCode": 200}}
    )
    assert path == tmp_path / "order-1.json"
    assert (
        path.read_text(encoding="utf-8") == json.dumps(event, indent=2, ensure_ascii=False) + "\n"
    )
    assert (
        json.loads((tmp_path / ".meta" / "order-1.json").read_text())["description"] == "paid order"
    )
    events.save_meta(tmp_path, "order-1", {"description": "changed"})
    assert (
        path.read_text(encoding="utf-8") == json.dumps(event, indent=2, ensure_ascii=False) + "\n"
    )
    assert events.load_meta(tmp_path, "order-1") == {"description": "changed"}
    assert events.list_saved(tmp_path) == ["order-1"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask, "saved events get the usual permissions"


def test_saved_events_survive_into_a_new_process(tmp_path: Path) -> None:
    events.save_event(tmp_path, "b-second", [1, 2, 3])
    events.save_event(tmp_path, "a.first", {"k": "v"}, {"description": "first"})
    (tmp_path / "notes.txt").write_text("not an event")
    probe = (
        "import json, sys; from pathlib import Path; "
        "from workbench.core.saved_events import store as events; "
        "f = Path(sys.argv[1]); names = events.list_saved(f); "
        "print(json.dumps([names, [events.load_saved(f, n) for n in names], "
        "events.load_meta(f, 'a.first')]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == [
        ["a.first", "b-second"],
        [{"k": "v"}, [1, 2, 3]],
        {"description": "first"},
    ]


def test_rename_and_delete_take_the_sidecar_along(tmp_path: Path) -> None:
    events.save_event(tmp_path, "one", {"n": 1}, {"description": "d"})
    events.save_event(tmp_path, "two", {"n": 2})
    with pytest.raises(EventError, match="already exists"):
        events.rename_event(tmp_path, "one", "two")
    events.rename_event(tmp_path, "one", "uno")
    assert events.list_saved(tmp_path) == ["two", "uno"]
    assert events.load_meta(tmp_path, "uno") == {"description": "d"}
    assert not (tmp_path / ".meta" / "one.json").exists()
    events.delete_event(tmp_path, "uno")
    assert events.list_saved(tmp_path) == ["two"]
    assert not (tmp_path / ".meta" / "uno.json").exists()
    with pytest.raises(EventError, match="no saved event 'uno'"):
        events.delete_event(tmp_path, "uno")
    with pytest.raises(EventError, match="already exists"):
        events.save_event(tmp_path, "two", {}, overwrite=False)


def test_a_broken_saved_event_is_reported_with_its_place(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{\n  "a": 1,\n}\n')
    with pytest.raises(EventError, match=r"bad.json is not valid JSON: line 3"):
        events.load_saved(tmp_path, "bad")
    with pytest.raises(EventError, match="saved events: bad"):
        events.load_saved(tmp_path, "missing")


# -- the console's shareable test events -----------------------------------------------------

CONSOLE_DOC: dict[str, Any] = {
    "openapi": "3.0.0",
    "info": {"version": "1.0.0", "title": "Event"},
    "paths": {},
    "components": {
        "schemas": {
            "Event": {
                "type": "object",
                "required": ["key1"],
                "properties": {"key1": {"type": "string"}},
            }
        },
        "examples": {
            "first-test": {"value": {"key1": "value1"}},
            "Second_Test.2": {"value": {"key1": "value2", "extra": [1, {"x": None}]}},
            "empty": {"value": {}},
        },
    },
}


def test_console_import_then_export_is_lossless() -> None:
    pairs = console_events.import_console(json.dumps(CONSOLE_DOC))
    assert pairs == [(n, e["value"]) for n, e in CONSOLE_DOC["components"]["examples"].items()]
    exported = console_events.export_console(pairs)
    assert exported["components"]["examples"] == CONSOLE_DOC["components"]["examples"]
    assert list(exported["components"]["examples"]) == list(CONSOLE_DOC["components"]["examples"])
    assert exported["openapi"] == "3.0.0" and exported["paths"] == {}
    schema = exported["components"]["schemas"]["Event"]
    assert schema["type"] == "object" and schema["required"] == []
    assert set(schema["properties"]) == {"key1", "extra"}


def test_every_sample_survives_export_then_import() -> None:
    pairs = [(name.replace("/", "-"), render_sample(name)) for name in SAMPLES]
    document = json.loads(json.dumps(console_events.export_console(pairs)))
    assert console_events.import_console(document) == pairs
    described = {
        "SchemaName": console_events.schema_name("my-fn"),
        "Content": json.dumps(document),
        "Type": console_events.SCHEMA_TYPE,
    }
    assert console_events.import_console(described) == pairs
    assert console_events.schema_name("my-fn") == "_my-fn-schema"
    assert console_events.REGISTRY == "lambda-testevent-schemas"


@pytest.mark.parametrize(
    "bad,message",
    [
        ("not json", "not a JSON document"),
        ({"openapi": "3.0.0"}, "needs an OpenAPI `components`"),
        ({"components": {"examples": {"x": {"externalValue": "http://x"}}}}, "has no `value`"),
        ({"components": {"examples": []}}, "must be an object"),
    ],
)
def test_console_documents_that_are_not_are_refused(bad: Any, message: str) -> None:
    with pytest.raises(EventError, match=message):
        console_events.import_console(bad)


def test_console_import_into_a_folder(tmp_path: Path) -> None:
    doc = json.loads(json.dumps(CONSOLE_DOC))
    doc["components"]["examples"]["first-test"]["summary"] = "from the console"
    statuses = console_events.import_into_folder(tmp_path, doc)
    assert statuses == [("first-test", "new"), ("Second_Test.2", "new"), ("empty", "new")]
    assert events.load_saved(tmp_path, "Second_Test.2") == {
        "key1": "value2",
        "extra": [1, {"x": None}],
    }
    assert events.load_meta(tmp_path, "first-test") == {"description": "from the console"}
    assert console_events.import_into_folder(tmp_path, doc)[0] == ("first-test", "unchanged")
    doc["components"]["examples"]["empty"]["value"] = {"changed": True}
    with pytest.raises(EventError, match="empty already saved"):
        console_events.import_into_folder(tmp_path, doc)
    assert events.load_saved(tmp_path, "empty") == {}
    assert ("empty", "replaced") in console_events.import_into_folder(tmp_path, doc, replace=True)
    assert console_events.export_folder(tmp_path)["components"]["examples"]["empty"] == {
        "value": {"changed": True}
    }
    doc["components"]["examples"]["has space"] = {"value": {}}
    with pytest.raises(EventError, match="cannot save 'has space'"):
        console_events.import_into_folder(tmp_path, doc)


# -- `workbench events` -------------------------------------------------------------------------


def wb(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return run_workbench("events", *args, stdin=stdin)


def one_line_error(done: subprocess.CompletedProcess[bytes], pattern: str) -> None:
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("workbench: ") and pattern in err, err


def test_cli_list_and_show() -> None:
    done = wb("list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.decode().splitlines()
    assert len(lines) == len(SAMPLES)
    assert any(line.startswith("s3/put ") and "S3 object created" in line for line in lines)
    s3 = wb("list", "s3").stdout.decode().splitlines()
    assert [line.split()[0] for line in s3] == [n for n in SAMPLES if n.startswith("s3/")]
    one_line_error(wb("list", "nosuch"), "no sample events for service 'nosuch'")
    shown = wb("show", "sqs", "receive-message", "--param", "body=shown")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout.decode()
    assert "body" in text and "default: 'Hello from SQS!'" in text
    event = json.loads(text[text.index("\n{") + 1 :])
    assert event["Records"][0]["body"] == "shown"


def test_cli_new_prints_or_writes_the_event(tmp_path: Path) -> None:
    done = wb("new", "sqs/receive-message", "-p", "body=hello", "-p", "queue=q1")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)["Records"][0]
    assert record["body"] == "hello" and record["eventSourceARN"].endswith(":q1")
    assert record["md5OfBody"] == hashlib.md5(b"hello").hexdigest()
    out = tmp_path / "event.json"
    done = wb("new", "s3", "put", "--param", "bucket=cli-bucket", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["Records"][0]["s3"]["bucket"]["name"] == "cli-bucket"
    one_line_error(wb("new", "s3/put", "--param", "nope=1"), "has no parameter 'nope'")
    one_line_error(wb("new", "s3/put", "--param", "novalue"), "expected KEY=VALUE")
    one_line_error(wb("new", "s3/pt"), "did you mean s3/put")
    one_line_error(wb("new", "s3/put", "-o", str(tmp_path / "no" / "dir.json")), "cannot write")


def test_cli_save_import_export(tmp_path: Path) -> None:
    fn = tmp_path / "fn"
    fn.mkdir()
    (fn / "workbench.toml").write_text('events_dir = "test-events"\n')
    folder = fn / "test-events"
    done = wb(
        "save",
        str(fn),
        "paid",
        "--from",
        "sqs/receive-message",
        "-p",
        "body=paid",
        "--description",
        "a paid order",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((folder / "paid.json").read_text())["Records"][0]["body"] == "paid"
    meta = events.load_meta(folder, "paid")
    assert meta == {
        "sample": "sqs/receive-message",
        "params": {"body": "paid"},
        "description": "a paid order",
    }
    one_line_error(wb("save", str(fn), "paid", "--from", "sqs/receive-message"), "already exists")
    done = wb("save", str(fn), "raw", "-e", "-", stdin=b'{"hello": [1, 2]}')
    assert done.returncode == 0, done.stderr
    assert events.load_saved(folder, "raw") == {"hello": [1, 2]}
    one_line_error(wb("save", str(fn), "../up", "-e", "-", stdin=b"{}"), "cannot name")
    one_line_error(wb("save", str(fn), "broken", "-e", "-", stdin=b"{"), "not valid JSON")
    one_line_error(
        wb("save", str(tmp_path / "missing"), "x", "-e", "-", stdin=b"{}"), "is not a folder"
    )
    listed = wb("saved", str(fn)).stdout.decode().splitlines()
    assert listed == ["paid  a paid order", "raw"]

    exported = tmp_path / "console.json"
    done = wb("export", str(fn), "-o", str(exported), "--function", "orders")
    assert done.returncode == 0, done.stderr
    assert "--schema-name _orders-schema" in done.stderr.decode()
    document = json.loads(exported.read_text())
    assert list(document["components"]["examples"]) == ["paid", "raw"]

    other = tmp_path / "other"
    other.mkdir()
    done = wb("import", str(other), str(exported))
    assert done.returncode == 0, done.stderr
    for name in ("paid", "raw"):
        assert events.load_saved(other / "events", name) == events.load_saved(folder, name)
    again = wb("export", str(other))
    assert json.loads(again.stdout)["components"]["examples"] == document["components"]["examples"]
    document["components"]["examples"]["raw"]["value"] = {"changed": 1}
    done = wb("import", str(other), "-", stdin=json.dumps(document).encode())
    one_line_error(done, "raw already saved")
    assert (
        wb("import", str(other), "-", "--replace", stdin=json.dumps(document).encode()).returncode
        == 0
    )
    assert events.load_saved(other / "events", "raw") == {"changed": 1}
    one_line_error(wb("export", str(tmp_path / "fn" / "test-events")), "no saved events")
    one_line_error(wb("import", str(other), str(tmp_path / "nope.json")), "file not found")
