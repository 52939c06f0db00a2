from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    """Development-only commands (see the package's docstring)."""

    name = "devtools"
    verbose_name = "Development tools"
