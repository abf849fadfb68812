"""The read-only HTTP API over the warehouse view, and the web page that uses it."""

from coursemart.api.app import create_app

__all__ = ["create_app"]
