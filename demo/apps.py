from django.apps import AppConfig


class DemoConfig(AppConfig):
    """`manage.py demo`: the whole story on the embedded defaults (not a bounded context:
    it drives all four, as a client system, staff and operators would)."""

    name = "demo"
    default_auto_field = "django.db.models.BigAutoField"
