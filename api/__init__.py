"""The Flask REST API: an app factory, one blueprint per resource, thin views."""

from api.app import create_app

__all__ = ["create_app"]
