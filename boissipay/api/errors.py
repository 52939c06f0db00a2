"""RFC 9457 problem details for every API error, with a stable `code`."""

from __future__ import annotations

import logging
import re

from django.core.exceptions import BadRequest, PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler

from boissipay.api.renderers import PROBLEM_CONTENT_TYPE
from boissipay.errors import DomainError

logger = logging.getLogger(__name__)

CONTROL_IN_PATH = re.compile(r"[\x00-\x1f\x7f]|%(?:[01][0-9a-fA-F]|7[fF])")


def problem(status_code: int, code: str, title: str, detail: str = "", **extra) -> dict:
    body = {"type": f"https://boissipay.example/problems/{code}", "title": title, "status": status_code, "code": code}
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def _field_errors(detail, path: str = "") -> list[dict]:
    """Flatten DRF's nested validation errors into [{field, code, message}]."""
    errors: list[dict] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            errors += _field_errors(value, f"{path}.{field}".strip(".") if field else path)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict | list) and not isinstance(value, exceptions.ErrorDetail):
                errors += _field_errors(value, f"{path}[{index}]")
            else:
                errors += _field_errors(value, path)
    else:
        errors.append({"field": path, "code": getattr(detail, "code", "invalid"), "message": str(detail)})
    return errors


_TITLES = {
    400: "Invalid request",
    401: "Authentication required",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    406: "Not acceptable",
    409: "Conflict",
    415: "Unsupported media type",
    422: "Unprocessable operation",
    429: "Too many requests",
}


def problem_exception_handler(exc, context):
    if isinstance(exc, DomainError):
        body = problem(exc.status, exc.code, _TITLES.get(exc.status, "Error"), exc.detail)
        return Response(body, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        errors = (
            [
                {"field": "" if field == "__all__" else field, "code": error.code or "invalid", "message": message}
                for field, field_errors in exc.error_dict.items()
                for error in field_errors
                for message in error.messages
            ]
            if hasattr(exc, "error_dict")
            else [
                {"field": "", "code": error.code or "invalid", "message": message}
                for error in exc.error_list
                for message in error.messages
            ]
        )
        return Response(
            problem(400, "validation_error", "Invalid request", "Some fields are invalid.", errors=errors), status=400
        )
    if isinstance(exc, IntegrityError):
        # A concurrent request won a uniqueness race the service had checked for.
        logger.info("integrity conflict: %s", exc)
        body = problem(409, "conflict", "Conflict", "The request conflicts with a concurrent change; retry.")
        return Response(body, status=409)
    if isinstance(exc, RequestDataTooBig):
        body = problem(400, "request_too_large", "Invalid request", "The request body is too large.")
        return Response(body, status=400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    response = exception_handler(exc, context)
    if response is None:
        return None  # unexpected: Django logs it and answers 500 (see handler500)
    if isinstance(exc, exceptions.ValidationError):
        body = problem(
            400, "validation_error", "Invalid request", "Some fields are invalid.", errors=_field_errors(exc.detail)
        )
    elif isinstance(exc, exceptions.ParseError):
        body = problem(400, "malformed_request", "Invalid request", str(exc.detail))
    else:
        code = {
            401: "unauthenticated",
            403: "forbidden",
            404: "not_found",
            405: "method_not_allowed",
            406: "not_acceptable",
            415: "unsupported_media_type",
            429: "throttled",
        }.get(response.status_code, getattr(exc, "default_code", "error"))
        body = problem(response.status_code, code, _TITLES.get(response.status_code, "Error"), str(exc.detail))
    response.data = body
    return response


def problem_response(status_code: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse(
        problem(status_code, code, _TITLES.get(status_code, "Server error"), detail),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def handler404(request, exception=None):
    if not request.path.startswith("/api/"):
        from django.views.defaults import page_not_found

        return page_not_found(request, exception)
    return problem_response(404, "not_found", "No such resource.")


def handler500(request):
    return problem_response(500, "internal_error", "An unexpected error occurred; it has been logged.")


def handler400(request, exception=None):
    return problem_response(400, "bad_request", "The request could not be understood.")


@csrf_exempt  # an API client has no CSRF cookie: whatever the method, the answer is the 404
def api_not_found(request, unmatched: str = ""):
    """The last route under /api/: an unknown path answers a problem, not Django's page."""
    return problem_response(404, "not_found", "No such resource.")


def csrf_failure(request, reason: str = ""):
    """CSRF_FAILURE_VIEW: a problem under /api/ (the API authenticates by key, so this is
    only reached by a plain Django view), Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return problem_response(403, "forbidden", "The request was refused (CSRF).")
    from django.views.csrf import csrf_failure as django_csrf_failure

    return django_csrf_failure(request, reason)


class ApiProblemMiddleware:
    """Under /api/, errors that Django would answer itself (Http404 from a plain view, a
    refused permission, an unexpected exception) are problem+json whatever DEBUG says:
    a client system parses every answer the same way. DRF views answer their own errors
    through `problem_exception_handler` before this is reached."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith("/api/"):
            # A NUL (or another control character) names nothing: answered before it reaches
            # a query (PostgreSQL refuses NUL in text: a DataError, a 500).
            if CONTROL_IN_PATH.search(request.path):
                return problem_response(404, "not_found", "No such resource.")
            if CONTROL_IN_PATH.search(request.META.get("QUERY_STRING", "")):
                return problem_response(400, "bad_request", "The query holds a control character.")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not request.path.startswith("/api/"):
            return None
        if isinstance(exception, Http404):
            return problem_response(404, "not_found", "No such resource.")
        if isinstance(exception, PermissionDenied):
            return problem_response(403, "forbidden", "You may not do this.")
        if isinstance(exception, SuspiciousOperation | BadRequest):
            return problem_response(400, "bad_request", "The request could not be understood.")
        logging.getLogger("django.request").error(
            "Internal Server Error: %s", request.path, exc_info=exception, extra={"status_code": 500}
        )
        return handler500(request)
