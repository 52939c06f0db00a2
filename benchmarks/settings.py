"""Settings of the gunicorn that benchmarks/operations.py starts: the project's own, with
the floor's bare view added to its URLs (benchmarks/floor.py). Never used by the product."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.floor"
