from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer

PROBLEM_CONTENT_TYPE = "application/problem+json"


class ProblemAwareJSONRenderer(JSONRenderer):
    """JSON renderer that labels error bodies `application/problem+json`."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        response = (renderer_context or {}).get("response")
        if response is not None and response.status_code >= 400 and isinstance(data, dict) and "code" in data:
            response["Content-Type"] = PROBLEM_CONTENT_TYPE
        return super().render(data, accepted_media_type, renderer_context)


class DefaultFirstNegotiation(DefaultContentNegotiation):
    """DRF's content negotiation, without parsing anything when the client states no
    preference (no Accept header, or */*, and no ?format=): then DRF picks the first
    renderer anyway, and the purchase path need not pay for working that out."""

    def select_renderer(self, request, renderers, format_suffix=None):
        accept = request.META.get("HTTP_ACCEPT")
        if (
            accept in (None, "", "*/*")
            and not format_suffix
            and self.settings.URL_FORMAT_OVERRIDE not in request.query_params
        ):
            return renderers[0], renderers[0].media_type
        return super().select_renderer(request, renderers, format_suffix)
