"""The benchmark's Python baseline: pipeline-alert's job in Python 3 + boto3.

It makes the same AWS and Slack calls as the Rust function, in the same
order, so `scripts/bench` can compare the two under the same local Runtime
API and AWS/Slack stand-in (run as `python -m awslambdaric
pipeline_alert.handler`). It is a measuring stick, not a second
implementation: the alert text is short, and failures simply raise.
"""

import hashlib
import json
import os
import secrets
import time
import urllib.request

import boto3

# Built once per cold start, as the Rust function builds its clients at init.
ssm = boto3.client("ssm")
codepipeline = boto3.client("codepipeline")
codebuild = boto3.client("codebuild")
logs = boto3.client("logs")
dynamodb = boto3.client("dynamodb")
sns = boto3.client("sns")

TOPIC_ARN = os.environ["ALERT_TOPIC_ARN"]
TABLE = os.environ["IDEMPOTENCY_TABLE"]
LOG_LINES = int(os.environ.get("LOG_TAIL_LINES", "20"))
# The ledger's lease and retention, as shared/src/idempotency.rs has them
# (the function's timeout, 30 s, plus 30 s; 15 days).
CLAIM_LEASE = 60
RETENTION = 15 * 24 * 3600

# The webhook URL is a secret in SSM, read once at init like the Rust function.
WEBHOOK_URL = ssm.get_parameter(
    Name=os.environ["SLACK_WEBHOOK_PARAM"], WithDecryption=True
)["Parameter"]["Value"]
if not WEBHOOK_URL.startswith("https://") and os.environ.get("BENCH_ALLOW_HTTP_WEBHOOK") != "true":
    raise RuntimeError("SLACK_WEBHOOK_PARAM: not an https:// URL")


def claim(key):
    """The ledger's claim, recorded as done before the send (as the Rust
    executor's `once` does for SNS and Slack, which take no idempotency key):
    a conditional put, granted unless done or held."""
    now = int(time.time())
    owner = secrets.token_hex(16)
    dynamodb.put_item(
        TableName=TABLE,
        Item={
            "action_key": {"S": key},
            "status": {"S": "DONE"},
            "claimed_until": {"N": str(now + CLAIM_LEASE)},
            "owner": {"S": owner},
            "expires_at": {"N": str(now + RETENTION)},
        },
        ConditionExpression="attribute_not_exists(#k) OR (#s = :claimed AND #u < :now)",
        ExpressionAttributeNames={"#k": "action_key", "#s": "status", "#u": "claimed_until"},
        ExpressionAttributeValues={":claimed": {"S": "CLAIMED"}, ":now": {"N": str(now)}},
    )
    return owner


def handler(event, context):
    detail = event["detail"]
    pipeline, execution_id = detail["pipeline"], detail["execution-id"]
    if detail.get("state") != "FAILED":
        return {"ignored": "state is not FAILED"}
    # The pipeline's last state, for "recovered" notices (RECOVERED_NOTICES,
    # on by default): a consistent read, as flows::recovery makes it.
    state_key = f"state#pipeline#{event.get('account', '')}#{event.get('region', '')}#{pipeline}"
    dynamodb.get_item(TableName=TABLE, Key={"action_key": {"S": state_key}}, ConsistentRead=True)

    # The trigger and source revisions of the execution.
    execution = codepipeline.get_pipeline_execution(
        pipelineName=pipeline, pipelineExecutionId=execution_id
    )["pipelineExecution"]
    # The failed actions and their errors (the event carries no reason).
    failed = []
    for page in codepipeline.get_paginator("list_action_executions").paginate(
        pipelineName=pipeline, filter={"pipelineExecutionId": execution_id}
    ):
        failed += [a for a in page["actionExecutionDetails"] if a["status"] == "Failed"]
    # For a failed CodeBuild action: the build's log group, then its tail.
    tail = []
    build = next(
        (a for a in failed if a["input"]["actionTypeId"]["provider"] == "CodeBuild"), None
    )
    if build:
        build_id = build["output"]["executionResult"]["externalExecutionId"]
        build_logs = codebuild.batch_get_builds(ids=[build_id])["builds"][0]["logs"]
        events = logs.get_log_events(
            logGroupName=build_logs["groupName"],
            logStreamName=build_logs["streamName"],
            startFromHead=False,
            limit=LOG_LINES,
        )["events"]
        tail = [line for e in events for line in e["message"].splitlines()][-LOG_LINES:]

    first = failed[0] if failed else None
    error = (first or {}).get("output", {}).get("executionResult", {}).get("errorDetails", {})
    lines = [
        f"Pipeline: {pipeline}",
        f"Execution: {execution_id}",
        f"Trigger: {execution.get('trigger', {}).get('triggerType', '')}",
    ]
    lines += [f"Source {r['name']}: {r['revisionId'][:12]}" for r in execution.get("artifactRevisions", [])]
    if first:
        lines.append(f"Failed: {first['stageName']} / {first['actionName']}")
        lines.append(f"Error: {error.get('code', '')}: {error.get('message', '')}")
    text = "\n".join(lines + [""] + tail)
    subject = f"FAILED: pipeline {pipeline}"

    done = []
    # SNS, claimed first: a redelivered event must not alert twice.
    key = f"pipeline-alert#{event['id']}#Publish#{TOPIC_ARN}"
    claim(key)
    sns.publish(
        TopicArn=TOPIC_ARN,
        Subject=subject,
        Message=text,
        MessageAttributes={
            "pipeline": {"DataType": "String", "StringValue": pipeline},
            "state": {"DataType": "String", "StringValue": "FAILED"},
        },
    )
    done.append("published")
    # Slack, likewise claimed, then paced as effects::digest does: the
    # webhook's pacing item and the notice's posted mark are read first (the
    # Rust function reads both side by side; here one after the other).
    key = f"pipeline-alert#{event['id']}#PostSlack#slack"
    claim(key)
    pacing = f"slack-digest#{os.environ['SLACK_WEBHOOK_PARAM']}"
    dynamodb.get_item(TableName=TABLE, Key={"action_key": {"S": pacing}}, ConsistentRead=True)
    posted = f"{pacing}#posted#{hashlib.sha256(key.encode()).hexdigest()[:16]}"
    dynamodb.get_item(TableName=TABLE, Key={"action_key": {"S": posted}}, ConsistentRead=True)
    body = json.dumps({"text": f"*{subject}*\n```{text}```"}).encode()
    request = urllib.request.Request(
        WEBHOOK_URL, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()
    done.append("posted")
    # The failure recorded as the pipeline's state, after the notices: one
    # conditional write, as effects::state makes the first failure's.
    now = event.get("time", "")
    dynamodb.update_item(
        TableName=TABLE,
        Key={"action_key": {"S": state_key}},
        UpdateExpression="SET #state = :failed, #at = :t, #count = :one",
        ConditionExpression="attribute_not_exists(#k) OR (#state = :ok AND #at < :t)",
        ExpressionAttributeNames={"#k": "action_key", "#state": "state", "#at": "at", "#count": "failed_count"},
        ExpressionAttributeValues={
            ":failed": {"S": "FAILED"},
            ":ok": {"S": "SUCCEEDED"},
            ":t": {"S": now},
            ":one": {"N": "1"},
        },
    )
    done.append("recorded")
    return {"actions": ["Publish", "PostSlack", "RecordState"], "done": done}
