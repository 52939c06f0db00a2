"""django.contrib.admin, with Boissipay's admin site (boissipay.admin_site) as the default
site. Its own module: INSTALLED_APPS imports it before any model can be."""

from django.contrib.admin.apps import AdminConfig


class BoissipayAdminConfig(AdminConfig):
    default_site = "boissipay.admin_site.BoissipayAdminSite"
