"""An S3 endpoint for this folder's tests: moto's server on 127.0.0.1, started once.

Its own bucket: moto keeps buckets process-wide, and `tests/store` makes `m3leo` itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.loopback import moto_s3

BUCKET = "seeing"


@pytest.fixture(scope="session")
def s3_env(tmp_path_factory) -> Iterator[dict[str, str]]:
    with moto_s3(BUCKET, tmp_path_factory.mktemp("cache")) as env:
        yield env
