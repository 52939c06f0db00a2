from django.apps import AppConfig


class BoissipayConfig(AppConfig):
    name = "boissipay"
    verbose_name = "Platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from boissipay import checks  # noqa: F401  (registers the deployment checks)
        from boissipay.labels import translate_labels

        translate_labels()  # our labels in the staff's language (ADR 0034)
