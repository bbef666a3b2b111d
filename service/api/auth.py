"""API-key authentication: header ``X-API-Key``; no key -> 401, too weak a role -> 403."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader

from service.keys import KeyRecord, role_allows

HEADER = "X-API-Key"
api_key_header = APIKeyHeader(name=HEADER, auto_error=False,
                              description="An API key made with `svrisk keys create`.")
_CHALLENGE = {"WWW-Authenticate": f'APIKey header="{HEADER}"'}


def require(role: str):
    """A dependency that returns the caller's key record if its role is at least ``role``."""

    def check(request: Request, key: Annotated[str | None, Security(api_key_header)]) -> KeyRecord:
        if not key:
            raise HTTPException(401, f"missing API key: send it in the {HEADER} header",
                                headers=_CHALLENGE)
        record = request.app.state.keys.verify(key)
        if record is None:
            raise HTTPException(401, "API key not recognised or revoked", headers=_CHALLENGE)
        if not role_allows(record.role, role):
            raise HTTPException(403, f"this needs the {role!r} role; key {record.key_id!r} "
                                     f"has {record.role!r}")
        return record

    return check


viewer = require("viewer")
analyst = require("analyst")

router = APIRouter(tags=["auth"])


@router.get("/auth/whoami", summary="The key you are calling with (no secret)")
def whoami(record: Annotated[KeyRecord, Depends(viewer)]) -> dict:
    return {"key_id": record.key_id, "name": record.name, "role": record.role}
