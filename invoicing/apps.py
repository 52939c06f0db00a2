from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    verbose_name = "Invoicing"
    name = "invoicing"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from invoicing import dashboard, handlers, metrics  # noqa: F401  (registers the handlers, metrics, dashboard)
