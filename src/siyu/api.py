"""The JSON API under /api/v1/: one NinjaAPI that mounts each feature's router."""

from __future__ import annotations

from ninja import NinjaAPI

api = NinjaAPI(
    title="siyu API",
    version="1",
    description="Customers, identities (OneID), events and orders of one workspace. "
    "Authenticate with `Authorization: Bearer <api key>` (create one with `siyu apikey create`).",
    urls_namespace="api",
)
