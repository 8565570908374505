"""THE authorization table: every HTTP route's required permission, in one place (default deny).

Keys are route operation ids. A route that is not listed here answers 403 to everyone, so a new
route is unreachable until someone decides who may call it. ``PUBLIC`` routes need no credentials
(deliberately public: landing page, health check, API docs). Data scoping (which studies) is not
decided here but in the one SQL condition of ``yunying.index.access``.
"""

from __future__ import annotations

from typing import Final

from yunying.auth.access import Permission

PUBLIC: Final = None
P = Permission

ROUTE_POLICY: dict[str, Permission | None] = {
    # public
    "home": PUBLIC,
    "healthz": PUBLIC,
    "openapi": PUBLIC,
    "swagger_ui_html": PUBLIC,
    "swagger_ui_redirect": PUBLIC,
    # DICOMweb: query and retrieve
    "qido_studies": P.STUDY_READ,
    "qido_series": P.STUDY_READ,
    "qido_study_series": P.STUDY_READ,
    "qido_instances": P.STUDY_READ,
    "qido_study_instances": P.STUDY_READ,
    "qido_series_instances": P.STUDY_READ,
    "wado_study": P.STUDY_READ,
    "wado_series": P.STUDY_READ,
    "wado_instance": P.STUDY_READ,
    "wado_study_metadata": P.STUDY_READ,
    "wado_series_metadata": P.STUDY_READ,
    "wado_instance_metadata": P.STUDY_READ,
    "wado_frames": P.STUDY_READ,
    "wado_bulkdata": P.STUDY_READ,
    "wado_instance_rendered": P.STUDY_READ,
    "wado_frame_rendered": P.STUDY_READ,
    "wado_study_thumbnail": P.STUDY_READ,
    "wado_series_thumbnail": P.STUDY_READ,
    "wado_instance_thumbnail": P.STUDY_READ,
    "wado_frame_thumbnail": P.STUDY_READ,
    "wado_uri": P.STUDY_READ,
    # DICOMweb: store
    "stow_studies": P.STUDY_STORE,
    "stow_study": P.STUDY_STORE,
    # gateways
    "gateway_heartbeat": P.GATEWAY_REPORT,
    "gateways_list": P.GATEWAY_VIEW,
    "gateway_get": P.GATEWAY_VIEW,
}
