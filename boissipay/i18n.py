"""Languages: the back office speaks French by default, English when the person asks for
it (the language switch of the index, or the browser's Accept-Language); the API, the
health and metrics endpoints speak English always (their messages are part of the
contract clients code against)."""

from django.middleware.locale import LocaleMiddleware
from django.utils import translation

ENGLISH_ONLY = ("/api/", "/health/", "/metrics")


class BackOfficeLocaleMiddleware(LocaleMiddleware):
    def process_request(self, request):
        if request.path.startswith(ENGLISH_ONLY):
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
            return
        super().process_request(request)

    def process_response(self, request, response):
        if request.path.startswith(ENGLISH_ONLY):
            return response
        return super().process_response(request, response)
