from django.apps import AppConfig


class BoissipayConfig(AppConfig):
    name = "boissipay"
    verbose_name = "Boissipay platform"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin

        from boissipay import checks  # noqa: F401  (registers the deployment checks)

        # The back office is Boissipay's, and there is no public site to "view".
        admin.site.site_header = admin.site.site_title = "Boissipay"
        admin.site.index_title = "Back office"
        admin.site.site_url = None
