"""The JSON API under /api/v1/: one NinjaAPI, bearer API keys, and error answers that are
always a clear 4xx for bad input (never a 500)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from siyu.core.errors import DomainError, InvalidInput, NotFound, PermissionDenied
from siyu.org.rules import Scope, api_key_scope
from siyu.org.services import authenticate_api_key


class ApiKeyAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        key = authenticate_api_key(token)
        if key is None:
            return None
        request.api_key = key
        request.workspace = key.workspace
        return key


def scope_of(request: HttpRequest) -> Scope:
    return api_key_scope(request.workspace.pk)


api = NinjaAPI(
    title="siyu API",
    version="1",
    description=(
        "Customers, identities (OneID), events and orders of one workspace; reach: channel accounts, "
        "compliance settings, opt-outs and consent, messages through the outbox, and broadcasts. Authenticate with "
        "`Authorization: Bearer <api key>` (create one with `siyu apikey create --workspace SLUG`). "
        'Batch endpoints take `{"items": [...]}` with up to 1,000 items and are partially successful: '
        "the answer (200) gives `accepted`, `duplicates` and, per rejected item, its `index`, `field` and `message`."
    ),
    urls_namespace="api",
    auth=ApiKeyAuth(),
)


def _error(request: HttpRequest, status: int, detail, field: str | None = None) -> HttpResponse:
    body = {"detail": detail}
    if field:
        body["field"] = field
    return api.create_response(request, body, status=status)


def _readable(errors: list[dict]) -> list[dict]:
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "payload")]
        msg = err.get("msg", "invalid value")
        if err.get("type") == "extra_forbidden":
            msg = "unknown field"
        elif err.get("type") == "missing":
            msg = "field required"
        out.append({"field": ".".join(loc), "message": msg})
    return out


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return _error(request, 422, _readable(exc.errors))


@api.exception_handler(AuthenticationError)
def on_auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "missing, invalid or revoked API key: send 'Authorization: Bearer <key>'")


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, str(exc))


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, 413, f"request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes")


@api.exception_handler(DomainError)
def on_domain_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    status = 422
    if isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, PermissionDenied):
        status = 403
    elif isinstance(exc, InvalidInput):
        status = 422
    return _error(request, status, exc.message, exc.field)


from siyu.customers.api import router as customers_router  # noqa: E402
from siyu.tracking.api import router as tracking_router  # noqa: E402

api.add_router("/", customers_router)
api.add_router("/", tracking_router)

from siyu.conversations.api import router as conversations_router  # noqa: E402
from siyu.tags.api import router as tags_router  # noqa: E402

api.add_router("/", conversations_router)
api.add_router("/", tags_router)

from siyu.segments.api import router as segments_router  # noqa: E402

api.add_router("/", segments_router)

from siyu.content.api import router as content_router  # noqa: E402

api.add_router("/", content_router)

from siyu.channels.api import router as channels_router  # noqa: E402
from siyu.messaging.api import router as messaging_router  # noqa: E402

api.add_router("/", channels_router)
api.add_router("/", messaging_router)

from siyu.acquisition.api import router as acquisition_router  # noqa: E402

api.add_router("/", acquisition_router)

from siyu.handover.api import router as handover_router  # noqa: E402

api.add_router("/", handover_router)
