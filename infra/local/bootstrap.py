#!/usr/bin/env python3
"""Creates qpost's AWS-mode resources in an AWS emulator (moto) for tests and local runs.

Creates, named after --prefix:
  * the DynamoDB table (single-table design; see crates/aws/README.md) with its two
    indexes and TTL on `ttl`,
  * the delivery queue and the dead-letter queue (redrive policy from the first to the
    second),
then prints the environment qpost-aws reads, one KEY=value per line.

Refuses to run without AWS_ENDPOINT_URL so it can never touch a real account. Uses boto3,
which moto[server] installs (tests/sdk/py/requirements.txt, the .venv of scripts/test).

    AWS_ENDPOINT_URL=http://127.0.0.1:5555 .venv/bin/python infra/local/bootstrap.py --prefix dev
"""

import argparse
import json
import os
import sys

# Receives of one SQS record before the redrive policy calls it poison. Planned retries
# are receives too (the deliver function re-times them with the visibility timeout), so
# the bound sits above any retry count qpost accepts.
MAX_RECEIVE_COUNT = 1000
# SQS keeps a message at most 14 days.
RETENTION_SECONDS = 14 * 24 * 3600


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


def create_queues(sqs, prefix):
    dead = sqs.create_queue(
        QueueName=f"{prefix}-dead-letter",
        Attributes={"MessageRetentionPeriod": str(RETENTION_SECONDS)},
    )["QueueUrl"]
    dead_arn = sqs.get_queue_attributes(QueueUrl=dead, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    redrive = {"deadLetterTargetArn": dead_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
    delivery = sqs.create_queue(
        QueueName=f"{prefix}-delivery",
        Attributes={
            "MessageRetentionPeriod": str(RETENTION_SECONDS),
            "RedrivePolicy": json.dumps(redrive),
        },
    )["QueueUrl"]
    return delivery, dead


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True, help="name prefix of every resource")
    args = parser.parse_args()
    if not os.environ.get("AWS_ENDPOINT_URL"):
        sys.exit("bootstrap.py: AWS_ENDPOINT_URL is not set; it only talks to an emulator")
    # moto accepts any credentials; set them so boto3 does not look for a profile.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"

    import boto3  # imported late: --help works without it

    session = boto3.session.Session(region_name=region)
    table = f"{args.prefix}-state"
    create_table(session.client("dynamodb"), table)
    delivery, dead = create_queues(session.client("sqs"), args.prefix)
    print(f"QPOST_TABLE={table}")
    print(f"QPOST_DELIVERY_QUEUE_URL={delivery}")
    print(f"QPOST_DEAD_LETTER_QUEUE_URL={dead}")
    print(f"AWS_REGION={region}")


if __name__ == "__main__":
    main()
