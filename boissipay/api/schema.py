"""drf-spectacular helpers so the generated schema can be held to openapi/*.yaml."""

from django.utils import translation
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers


class ApiKeyScheme(OpenApiAuthenticationExtension):
    """How the generated schema (and Swagger UI's Authorize button) describes our API keys."""

    target_class = "boissipay.api.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "`Api-Key <key>`, a key issued with `manage.py apikey create`.",
        }


class ProblemErrorSerializer(serializers.Serializer):
    field = serializers.CharField()
    code = serializers.CharField()
    message = serializers.CharField()


class ProblemSerializer(serializers.Serializer):
    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    code = serializers.CharField()
    detail = serializers.CharField(required=False)
    errors = ProblemErrorSerializer(many=True, required=False)


_DESCRIPTIONS = {
    400: "Malformed or invalid request.",
    401: "Missing, bad or revoked API key.",
    403: "The key lacks the scope.",
    404: "Unknown resource, or another customer's.",
    409: "Refused by the resource's state or a uniqueness rule.",
    422: "Refused by a business rule; `code` is the reason code.",
}


def problems(*codes: int) -> dict:
    return {code: OpenApiResponse(ProblemSerializer, description=_DESCRIPTIONS[code]) for code in codes}


IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="A retry with the same key and body gets the first answer back and creates nothing.",
)
REQUIRED_IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    required=True,
    description="Required. A retry with the same key and body gets the first answer back and creates nothing.",
)


def page_of(serializer_class: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """The schema of a page of `serializer_class` items, as StandardPagination answers."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": serializer_class(many=True),
        },
    )


class EnglishSchemaGenerator(SchemaGenerator):
    """The API's document is English whoever asks for it (a French staff session, a check,
    `manage.py spectacular`): the model labels it quotes are translated otherwise."""

    def get_schema(self, request=None, public=False):
        with translation.override("en"):
            return super().get_schema(request=request, public=public)
