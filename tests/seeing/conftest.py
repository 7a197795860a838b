"""Fixtures shared with the store tests: moto's S3 server on 127.0.0.1."""

from tests.store.test_object_store import s3_env  # noqa: F401 - the fixture, re-registered here
