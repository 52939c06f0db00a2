from django.apps import AppConfig


class BillingConfig(AppConfig):
    verbose_name = "Billing"
    name = "billing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from billing import dashboard, handlers, metrics  # noqa: F401  (registers the handlers, metrics, dashboard)
