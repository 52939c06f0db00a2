from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from boissipay.api import views as platform_views
from boissipay.api.errors import api_not_found
from boissipay.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),  # the back office's language switch
    path("api/v1/", include("contracts.api.urls")),
    path("api/v1/", include("billing.api.urls")),
    path("api/v1/", include("invoicing.api.urls")),
    path("api/v1/", include("payments.api.urls")),
    path("api/health", platform_views.health, name="health"),
    path("health/live", platform_views.live, name="health-live"),
    path("health/ready", platform_views.ready, name="health-ready"),
    path("metrics", metrics_view, name="metrics"),
    path("api/schema/", platform_views.contract_documents, name="schema-index"),
    path("api/schema/<str:name>.yaml", platform_views.contract_document, name="schema-document"),
    path("api/schema/generated/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema-index"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema-index"), name="redoc"),
    # Last: any other path under /api/ is a problem+json 404, whatever DEBUG says.
    re_path(r"^api/(?P<unmatched>.*)$", api_not_found, name="api-not-found"),
]

handler404 = "boissipay.api.errors.handler404"
handler500 = "boissipay.api.errors.handler500"
handler400 = "boissipay.api.errors.handler400"
