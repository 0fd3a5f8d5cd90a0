"""Celery workers: the job engine lives here (see the job-engine issue)."""
