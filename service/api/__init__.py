"""HTTP service (FastAPI): one router per file; :func:`create_app` wires them."""

from service.api.app import create_app

__all__ = ["create_app"]
