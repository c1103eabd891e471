"""The Python peer of the Rust step Lambdas: the usual shape of a Python
Lambda (boto3 clients created at init), on a minimal Lambda runtime loop
so that it runs under the same local Runtime API as the Rust binaries."""

import json
import os
import urllib.request

import boto3

# What a Python port of a step Lambda creates at init.
AUTOSCALING = boto3.client("autoscaling")
EC2 = boto3.client("ec2")
SSM = boto3.client("ssm")
ELBV2 = boto3.client("elbv2")

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation"


def handler(event):
    """The same work as the Rust step on this event: validate and reject it."""
    record = event.get("deployment")
    if not isinstance(record, dict):
        raise ValueError("deployment: not a deployment record")
    return record


def main():
    while True:
        with urllib.request.urlopen(API + "/next") as response:
            request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(response.read())
        try:
            body, path = json.dumps(handler(event)), "/response"
        except Exception as error:  # the runtime reports any handler error
            body = json.dumps({"errorType": "StepDeploy.InvalidInput", "errorMessage": str(error)})
            path = "/error"
        urllib.request.urlopen(urllib.request.Request(API + "/" + request_id + path, data=body.encode(), method="POST")).read()


if __name__ == "__main__":
    main()
