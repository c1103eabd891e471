"""moto_server, with the one moto gap stepdeploy's tests can't route around
patched in (tests only; never shipped; see shared/reference/moto.md).

- CreateImage with a `snapshot` TagSpecification: moto 5 raises
  NotImplementedError (an HTML 500). AWS tags the image's snapshots in the
  same call, which stepdeploy relies on so that a failed image never leaves
  an untagged snapshot behind. Here the image is created with the other
  specifications and its snapshot is tagged right after, as AWS would.

usage: python moto_server.py [moto_server arguments]
"""

import sys

from moto.ec2.models import amis

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

if __name__ == "__main__":
    from moto.server import main

    main(sys.argv[1:])
