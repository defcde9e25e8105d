"""/docs: Swagger UI served from its Python package (swagger-ui-bundle-v2), so the page loads nothing from
another site and works offline. ReDoc is not served: FastAPI's page for it loads its script from a CDN.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

DOCS_PATH = "/docs"
ASSETS_PATH = f"{DOCS_PATH}/assets"


def add_docs(app: FastAPI) -> None:
    """Serve the docs page and its assets; the app is created with `docs_url=None, redoc_url=None`."""
    openapi_url = app.openapi_url
    assert openapi_url is not None
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title=f"{app.title} - Swagger UI",
        swagger_js_url=f"{ASSETS_PATH}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}/favicon-32x32.png",
        oauth2_redirect_url=None,
    )

    async def docs() -> HTMLResponse:
        return page

    app.mount(ASSETS_PATH, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui")
    app.add_api_route(DOCS_PATH, docs, include_in_schema=False)
