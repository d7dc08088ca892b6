"""Fixtures of the export storage tests: moto's S3 server (see s3server.py)."""

from tests.exports.s3server import s3_server

__all__ = ["s3_server"]
