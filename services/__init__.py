"""Domain logic shared by the API and the workers: nothing here knows about HTTP or Celery."""
