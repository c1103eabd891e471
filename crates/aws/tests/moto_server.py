"""moto_server, with the moto gaps stepdeploy's tests can't route around
patched in (tests only; never shipped; see shared/reference/moto.md).

- CreateImage with a `snapshot` TagSpecification: moto 5 raises
  NotImplementedError (an HTML 500). AWS tags the image's snapshots in the
  same call, which stepdeploy relies on so that a failed image never leaves
  an untagged snapshot behind. Here the image is created with the other
  specifications and its snapshot is tagged right after, as AWS would.

- SSM DescribeInstanceInformation: moto has none (an HTML 500). moto runs
  no SSM agent either, so here every running EC2 instance (of those the
  InstanceIds filter names) is Online, as on AWS an instance with an
  instance profile and a route to SSM is. What stepdeploy does with an
  instance SSM doesn't list is tested on the sim and aws-smithy-mocks.

usage: python moto_server.py [moto_server arguments]
"""

import sys

from moto.ec2.models import amis
from moto.ssm import responses as ssm_responses

_create_image = amis.AmiBackend.create_image


def create_image(self, instance_id, name, description, tag_specifications):
    snapshot_tags = {}
    others = []
    for spec in tag_specifications or []:
        if spec.get("ResourceType") == "snapshot":
            snapshot_tags.update({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
        else:
            others.append(spec)
    image = _create_image(self, instance_id, name, description, others)
    snapshot = getattr(image, "ebs_snapshot", None)
    if snapshot_tags and snapshot is not None:
        self.create_tags([snapshot.id], snapshot_tags)
    return image


amis.AmiBackend.create_image = create_image


def describe_instance_information(self):
    from moto.core.responses import ActionResult
    from moto.ec2.models import ec2_backends

    wanted = set()
    for spec in self._get_param("Filters") or []:
        if spec.get("Key") == "InstanceIds":
            wanted.update(spec.get("Values", []))
    ec2 = ec2_backends[self.current_account][self.region]
    found = []
    for reservation in ec2.reservations.values():
        for instance in reservation.instances:
            if instance.state == "running" and (not wanted or instance.id in wanted):
                found.append({"InstanceId": instance.id, "PingStatus": "Online", "ResourceType": "EC2Instance", "PlatformType": "Linux"})
    return ActionResult({"InstanceInformationList": found})


ssm_responses.SimpleSystemManagerResponse.describe_instance_information = describe_instance_information

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
