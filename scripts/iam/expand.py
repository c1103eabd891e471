#!/usr/bin/env python3
"""Expands template.yaml with the SAM translator, offline, into plain
CloudFormation JSON: what `sam deploy` hands to CloudFormation.

usage: expand.py TEMPLATE [Name=Value ...] > expanded.json

Local CodeUri/DefinitionUri paths become placeholder S3 URIs (the
translator accepts only those); nothing else changes. Uses cfn-lint's YAML
reader (it knows the short-form intrinsics) and its copy of SAM's managed
policy map, both from .venv.
"""
import json
import os
import sys

from cfnlint.data import Serverless
from cfnlint.decode import cfn_yaml
from cfnlint.helpers import load_resource
from samtranslator.parser import parser
from samtranslator.translator.translator import Translator


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    template = cfn_yaml.load(argv[1])
    parameters = {}
    for pair in argv[2:]:
        name, _, value = pair.partition("=")
        parameters[name] = value
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str):
            props["CodeUri"] = "s3://stepdeploy-placeholder/code.zip"
        if kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            props["DefinitionUri"] = "s3://stepdeploy-placeholder/" + os.path.basename(props["DefinitionUri"])
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    translator = Translator(managed_policy_map=load_resource(Serverless, "ManagedPolicies.json"), sam_parser=parser.Parser())
    expanded = translator.translate(sam_template=template, parameter_values=parameters, passthrough_metadata=True)
    json.dump(expanded, sys.stdout, indent=1, sort_keys=True, default=str)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
