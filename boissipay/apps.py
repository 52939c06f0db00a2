from django.apps import AppConfig


class BoissipayConfig(AppConfig):
    name = "boissipay"
    verbose_name = "Boissipay platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from boissipay import checks  # noqa: F401  (registers the deployment checks)
