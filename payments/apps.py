from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    verbose_name = "Payments"
    name = "payments"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from payments import dashboard, handlers, metrics  # noqa: F401  (registers the handlers, metrics, dashboard)
