"""The session's moto server answers S3 too, through AWS_ENDPOINT_URL as the service's clients."""

from __future__ import annotations

import boto3

from harness.aws import REGION, Moto


def test_an_object_put_in_a_bucket_comes_back(aws: Moto) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(
        Bucket="ipcam-snapshots", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    s3.put_object(Bucket="ipcam-snapshots", Key="cam01/snapshot.jpg", Body=b"\xff\xd8jpeg")
    answer = s3.get_object(Bucket="ipcam-snapshots", Key="cam01/snapshot.jpg")
    assert answer["Body"].read() == b"\xff\xd8jpeg"
    assert s3.meta.endpoint_url == aws.endpoint
