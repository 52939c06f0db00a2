from django.apps import AppConfig


class ContractsConfig(AppConfig):
    verbose_name = "Contracts"
    name = "contracts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from contracts import handlers  # noqa: F401  (registers the event handlers)
