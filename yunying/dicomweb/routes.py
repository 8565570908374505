"""The DICOMweb route table: one router per PS3.18 service, mounted under /dicom-web."""

from __future__ import annotations

from fastapi import APIRouter

from yunying.dicomweb import qido, rendered, stow, wado, wado_uri

SERVICES = (qido.router, wado.router, rendered.router, stow.router)


def dicomweb_router() -> APIRouter:
    router = APIRouter(prefix="/dicom-web")
    for service in SERVICES:
        router.include_router(service)
    return router


def wado_uri_router() -> APIRouter:
    return wado_uri.router
