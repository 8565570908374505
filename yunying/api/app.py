"""The HTTP application factory."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from yunying import __version__
from yunying.api import problems, security
from yunying.api.deps import authorize
from yunying.api.routes import annotations as annotation_routes
from yunying.api.routes import (
    audit,
    cloudfilm,
    downloads,
    feedback,
    films,
    gateways,
    health,
    home,
    patient,
    priors,
    reports,
    session,
    shares,
)
from yunying.compose import Archive
from yunying.dicomweb.routes import dicomweb_router, wado_uri_router
from yunying.web import mobile, mobile_viewer, pages, viewer

PUBLIC_PATHS = (frozenset({"/", "/healthz", "/docs", "/openapi.json", "/docs/oauth2-redirect", "/api/cloudfilm/open/{token}",
                           "/api/cloudfilm/open/{token}/code", "/api/cloudfilm/open/{token}/verify"})
                | pages.PUBLIC_PAGES | viewer.PUBLIC_PAGES | mobile.PUBLIC_PAGES)


def create_app(archive: Archive) -> FastAPI:
    app = FastAPI(
        title="Yunying (云影) archive API",
        version=__version__,
        description="DICOMweb (QIDO-RS, WADO-RS, STOW-RS, WADO-URI) and platform API of the Yunying archive.",
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(authorize)],  # every route: yunying.api.policy.ROUTE_POLICY, default deny
    )
    app.state.archive = archive
    problems.install(app)
    security.install(app, archive.settings)  # headers, CORS, origin check, body limit
    app.include_router(home.router)
    app.include_router(health.router)
    app.include_router(gateways.router)
    app.include_router(audit.router)
    app.include_router(reports.router)
    app.include_router(session.router)
    app.include_router(annotation_routes.router)
    app.include_router(priors.router)
    app.include_router(films.router)
    app.include_router(downloads.router)
    app.include_router(shares.patient_router)
    app.include_router(shares.public_router)
    app.include_router(feedback.router)
    app.include_router(cloudfilm.router)
    app.include_router(patient.router)
    app.include_router(dicomweb_router())
    app.include_router(wado_uri_router())
    app.include_router(pages.router)  # the web pages (/ui/…)
    app.include_router(viewer.router)  # the web viewer (/viewer)
    app.include_router(mobile_viewer.router)  # the phone viewer (/m/viewer)
    app.include_router(mobile.router)  # the cloud film's phone pages (/m/…, /s/{token})
    return app
