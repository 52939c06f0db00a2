"""The Celery app: `celery -A config worker` / `celery -A config beat`.

Settings come from Django's (`CELERY_*`); Beat reads its schedule from the database
(django-celery-beat), where a migration created "monthly billing run"."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("boissipay")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
