#!/usr/bin/env python3
"""Creates qpost's AWS-mode resources in an AWS emulator (moto, LocalStack) for tests and local runs.

Creates, named after --prefix, what template.yaml creates on AWS (infra/README.md):
  * the DynamoDB table (single-table design) with its two indexes and TTL on `ttl`,
  * the delivery queue, the dead-letter queue and the parked queue, chained by redrive
    policies (delivery -> dead-letter after MAX_RECEIVE_COUNT receives, dead-letter -> parked),
  * the same chain of FIFO queues for the wake-ups of messages in qpost queues (ordered ->
    ordered dead-letter after ORDERED_MAX_RECEIVE_COUNT receives -> ordered parked),
  * the EventBridge Scheduler schedule group and the role schedules send to the queue with,
  * the secondary schedule group (one-time wake-ups, weekday halves of two-expression crons),
  * the S3 bucket of bodies too large for a DynamoDB item (the claim check),
  * the SSM SecureString parameter holding the API token (the QStash dev-server token, or
    --token),
then prints the environment qpost-aws reads (crates/aws/src/config.rs): one KEY=value per
line, or with --format sam-env the JSON file `sam local invoke --env-vars` takes.

Refuses to run without AWS_ENDPOINT_URL so it can never touch a real account. Uses boto3,
which moto[server] installs (tests/sdk/py/requirements.txt, the .venv of scripts/test).

    AWS_ENDPOINT_URL=http://127.0.0.1:5555 .venv/bin/python infra/local/bootstrap.py --prefix dev
"""

import argparse
import json
import os
import sys

# Receives of one delivery-queue record before the redrive policy calls it poison; the same
# number as template.yaml, which explains it. Planned retries are receives too (the deliver
# function re-times them with the visibility timeout), so it sits above 1 + the most retries.
MAX_RECEIVE_COUNT = 100
# Receives of one dead-letter record before it is parked for an operator: above
# MAX_RECEIVE_COUNT in case SQS carries a redriven record's count (template.yaml).
DEAD_LETTER_MAX_RECEIVE_COUNT = 110
# Receives of one ordered-queue (FIFO) record before its redrive: the head of a paused qpost
# queue is received again every few minutes while it waits, so this is higher (template.yaml).
ORDERED_MAX_RECEIVE_COUNT = 300
# SQS keeps a message at most 14 days.
RETENTION_SECONDS = 14 * 24 * 3600
# The public QStash dev-server token: what SDK code written for the dev server sends.
DEV_TOKEN = "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
# Visibility timeouts: 6 x the consuming function's timeout (template.yaml).
DELIVERY_VISIBILITY_SECONDS = 6 * 360
DEAD_LETTER_VISIBILITY_SECONDS = 6 * 60


def table_definition(name):
    """The table as the stack defines it; template.yaml must match."""
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": "S"}
            for a in ("pk", "sk", "gsi1pk", "gsi1sk", "queue")
        ],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                # Messages in creation order, sharded: find, wakeups.
                "IndexName": "by_created",
                "KeySchema": [
                    {"AttributeName": "gsi1pk", "KeyType": "HASH"},
                    {"AttributeName": "gsi1sk", "KeyType": "RANGE"},
                ],
                "Projection": {
                    "ProjectionType": "INCLUDE",
                    "NonKeyAttributes": ["meta", "due", "retried"],
                },
            },
            {
                # Messages of a queue (sparse): queue lag.
                "IndexName": "by_queue",
                "KeySchema": [{"AttributeName": "queue", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            },
        ],
    }


def create_table(dynamodb, name):
    dynamodb.create_table(**table_definition(name))
    dynamodb.get_waiter("table_exists").wait(TableName=name)
    dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"},
    )


def create_queue(sqs, name, visibility=None, redrive_to=None, max_receives=None, fifo=False):
    """Creates a queue and returns (url, arn); a FIFO queue's name gets the `.fifo` suffix."""
    attributes = {"MessageRetentionPeriod": str(RETENTION_SECONDS)}
    if fifo:
        name = f"{name}.fifo"
        attributes["FifoQueue"] = "true"
    if visibility is not None:
        attributes["VisibilityTimeout"] = str(visibility)
    if redrive_to is not None:
        redrive = {"deadLetterTargetArn": redrive_to, "maxReceiveCount": max_receives}
        attributes["RedrivePolicy"] = json.dumps(redrive)
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return url, arn


def create_chain(sqs, prefix, fifo=False):
    """Three queues, parked <- dead-letter <- delivery; returns (delivery, dead-letter), each (url, arn)."""
    _, parked_arn = create_queue(sqs, f"{prefix}-parked", fifo=fifo)
    dead = create_queue(
        sqs,
        f"{prefix}-dead-letter",
        visibility=DEAD_LETTER_VISIBILITY_SECONDS,
        redrive_to=parked_arn,
        max_receives=DEAD_LETTER_MAX_RECEIVE_COUNT if not fifo else ORDERED_MAX_RECEIVE_COUNT + 10,
        fifo=fifo,
    )
    delivery = create_queue(
        sqs,
        f"{prefix}-delivery",
        visibility=DELIVERY_VISIBILITY_SECONDS,
        redrive_to=dead[1],
        max_receives=MAX_RECEIVE_COUNT if not fifo else ORDERED_MAX_RECEIVE_COUNT,
        fifo=fifo,
    )
    return delivery, dead


def create_scheduler(session, prefix, queue_arns):
    """The schedule group and the role EventBridge Scheduler assumes; returns (group, role ARN)."""
    group = f"{prefix}-schedules"
    session.client("scheduler").create_schedule_group(Name=group)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    iam = session.client("iam")
    role = iam.create_role(RoleName=f"{prefix}-scheduler", AssumeRolePolicyDocument=json.dumps(trust))
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": queue_arns}],
    }
    iam.put_role_policy(
        RoleName=f"{prefix}-scheduler", PolicyName="send-wakeups", PolicyDocument=json.dumps(policy)
    )
    return group, role["Role"]["Arn"]


def create_secondary_schedule_group(session, prefix):
    """The group of one-time wake-ups and weekday halves of crons needing two expressions,
    apart from the group of qpost schedules so no name can collide; returns its name."""
    group = f"{prefix}-secondary-schedules"
    session.client("scheduler").create_schedule_group(Name=group)
    return group


def create_body_bucket(s3, prefix, region):
    """The bucket of large bodies; returns its name (lower case: S3 refuses upper case).

    template.yaml adds encryption, the public access block and the lifecycle rule; emulators
    need none of them to run qpost."""
    name = f"{prefix}-bodies".lower()
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    return name


def create_token_parameter(ssm, prefix, token):
    """The SecureString the API functions read the token from; returns its name."""
    name = f"/{prefix}/token"
    ssm.put_parameter(Name=name, Value=token, Type="SecureString")
    return name


def environment(session, prefix, region, token):
    """Creates everything and returns the variables qpost-aws reads, in a stable order."""
    table = f"{prefix}-state"
    create_table(session.client("dynamodb"), table)
    sqs = session.client("sqs")
    (delivery_url, delivery_arn), (dead_url, dead_arn) = create_chain(sqs, prefix)
    (ordered_url, _), (ordered_dead_url, _) = create_chain(sqs, f"{prefix}-ordered", fifo=True)
    group, role_arn = create_scheduler(session, prefix, [delivery_arn, dead_arn])
    return {
        "QPOST_TABLE": table,
        "QPOST_DELIVERY_QUEUE_URL": delivery_url,
        "QPOST_ORDERED_QUEUE_URL": ordered_url,
        "QPOST_ORDERED_DEAD_LETTER_QUEUE_URL": ordered_dead_url,
        "QPOST_DEAD_LETTER_QUEUE_URL": dead_url,
        "QPOST_DELIVERY_QUEUE_ARN": delivery_arn,
        "QPOST_DEAD_LETTER_QUEUE_ARN": dead_arn,
        "QPOST_SCHEDULE_GROUP": group,
        "QPOST_SECONDARY_SCHEDULE_GROUP": create_secondary_schedule_group(session, prefix),
        "QPOST_SCHEDULER_ROLE_ARN": role_arn,
        "QPOST_BODY_BUCKET": create_body_bucket(session.client("s3"), prefix, region),
        "QPOST_TOKEN_PARAMETER": create_token_parameter(session.client("ssm"), prefix, token),
        "AWS_REGION": region,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True, help="name prefix of every resource")
    parser.add_argument(
        "--format",
        choices=["env", "sam-env"],
        default="env",
        help="env: KEY=value lines (default); sam-env: JSON for `sam local invoke --env-vars`",
    )
    parser.add_argument("--token", default=DEV_TOKEN, help="API token (default: the dev token)")
    args = parser.parse_args()
    if not os.environ.get("AWS_ENDPOINT_URL"):
        sys.exit("bootstrap.py: AWS_ENDPOINT_URL is not set; it only talks to an emulator")
    # Emulators accept any credentials; set them so boto3 does not look for a profile.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    import boto3  # imported late: --help works without it

    env = environment(
        boto3.session.Session(region_name=region), args.prefix, region, args.token
    )
    if args.format == "sam-env":
        # AWS_REGION is Lambda's own; sam local sets it from --region.
        variables = {k: v for k, v in env.items() if k != "AWS_REGION"}
        print(json.dumps({"Parameters": variables}, indent=2))
    else:
        for key, value in env.items():
            print(f"{key}={value}")


if __name__ == "__main__":
    main()
