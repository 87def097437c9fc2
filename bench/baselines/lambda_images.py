"""BASELINE, not part of the product: the seeds' S3 image compressor in Python (boto3 + Pillow).

S3 ObjectCreated → download → for each variant `thumbnail(LANCZOS)` + JPEG q85 `optimize=True` →
upload to the destination bucket with metadata, as the seed handlers do.
"""
import io
import os
import urllib.parse

import boto3
from PIL import Image

S3 = boto3.client("s3")
DESTINATION = os.environ["DESTINATION_BUCKET"]
VARIANTS = [(name, int(size)) for name, size in
            (v.split(":") for v in os.environ.get("VARIANTS", "thumbnail:150,small:300,medium:600,large:1200").split(","))]
QUALITY = int(os.environ.get("JPEG_QUALITY", "85"))


def handler(event, context):
    written = 0
    for record in event.get("Records", []):
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        original = S3.get_object(Bucket=bucket, Key=key)["Body"].read()
        image = Image.open(io.BytesIO(original))
        image.load()
        for name, size in VARIANTS:
            copy = image.copy()
            copy.thumbnail((size, size), Image.LANCZOS)
            if copy.mode != "RGB":
                copy = copy.convert("RGB")
            out = io.BytesIO()
            copy.save(out, "JPEG", quality=QUALITY, optimize=True)
            body = out.getvalue()
            S3.put_object(Bucket=DESTINATION, Key=f"{name}/{os.path.splitext(key)[0]}.jpg", Body=body,
                          ContentType="image/jpeg",
                          Metadata={"original-size": str(len(original)), "compressed-size": str(len(body))})
            written += 1
    return {"written": written}
