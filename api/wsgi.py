"""WSGI entry point for gunicorn and other servers: `gunicorn api.wsgi:app`."""

from api import create_app

app = create_app()
