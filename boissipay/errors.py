"""Domain errors raised by services and answered by the API as problem details."""


class DomainError(Exception):
    """A business rule refused the command. Services raise it; the API answers with
    `status` (409 by default) and `code`."""

    status = 409

    def __init__(self, code: str, detail: str, *, status_code: int | None = None):
        super().__init__(detail)
        self.code = code
        self.detail = detail
        if status_code is not None:
            self.status = status_code


class NotFound(DomainError):
    status = 404

    def __init__(self, detail: str = "Not found.", code: str = "not_found"):
        super().__init__(code, detail)
