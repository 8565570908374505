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
    # viewer annotations (yunying.api.routes.annotations): the caller's own, on studies they may read
    "annotations_get": P.STUDY_READ,
    "annotations_put": P.STUDY_READ,
    "annotations_delete": P.STUDY_READ,
    "annotations_sr": P.STUDY_READ,
    # reports (yunying.api.routes.reports): reading also needs the study in the caller's scope
    "reports_create": P.REPORT_WRITE,
    "reports_amend": P.REPORT_WRITE,
    "reports_get": P.STUDY_READ,
    "reports_list": P.STUDY_READ,
    "reports_history": P.STUDY_READ,
    "reports_pdf": P.STUDY_READ,
    # film sheets (yunying.api.routes.films): read by anyone who may read the study; new ones queued by staff
    "films_list": P.STUDY_READ,
    "films_png": P.STUDY_READ,
    "films_pdf": P.STUDY_READ,
    "films_compose": P.STUDY_READ,
    # shares (yunying.api.routes.shares): a patient's own (patient session); the visitor's entry is public
    "patient_shares_create": P.SHARE_CREATE,
    "patient_shares_list": P.SHARE_CREATE,
    "patient_shares_revoke": P.SHARE_CREATE,
    "share_info": PUBLIC,
    "share_open": PUBLIC,
    # feedback tickets (yunying.api.routes.feedback, yunying.web.feedback)
    "feedback_create": P.FEEDBACK_SEND,
    "feedback_list": P.FEEDBACK_MANAGE,
    "feedback_close": P.FEEDBACK_MANAGE,
    "feedback_screenshot": P.FEEDBACK_MANAGE,
    "ui_feedback": P.FEEDBACK_MANAGE,
    "ui_feedback_close": P.FEEDBACK_MANAGE,
    # gateways
    "gateway_heartbeat": P.GATEWAY_REPORT,
    "gateways_list": P.GATEWAY_VIEW,
    "gateway_get": P.GATEWAY_VIEW,
    # the audit trail (yunying.api.routes.audit): reading it is itself audited
    "audit_search": P.AUDIT_READ,
    "audit_export": P.AUDIT_READ,
    # interactive sessions (yunying.api.routes.session): login is public but rate-limited
    "session_login": PUBLIC,
    "session_get": P.SELF,
    "session_logout": P.SELF,
    "session_logout_all": P.SELF,
    "session_lock": P.SELF,
    "session_unlock": P.SELF,
    "session_totp_enroll": P.SELF,
    "session_totp_confirm": P.SELF,
    "session_password": P.SELF,
    # web pages (yunying.web): sign-in public (rate-limited), the rest by what each page shows or changes
    "ui_static": PUBLIC,
    "ui_login": PUBLIC,
    "ui_login_submit": PUBLIC,
    "ui_logout": P.SELF,
    "ui_home": P.SELF,
    "ui_totp": P.SELF,
    "ui_totp_enroll": P.SELF,
    "ui_totp_confirm": P.SELF,
    "ui_studies": P.STUDY_READ,
    "ui_audit": P.AUDIT_READ,
    "ui_institutions": P.INSTITUTION_MANAGE,
    "ui_institution_create": P.INSTITUTION_MANAGE,
    "ui_users": P.USER_MANAGE,
    "ui_user_create": P.USER_MANAGE,
    "ui_user_update": P.USER_MANAGE,
    "ui_peers": P.PEER_MANAGE,
    "ui_peer_add": P.PEER_MANAGE,
    "ui_peer_remove": P.PEER_MANAGE,
    "ui_grants": P.STUDY_SHARE,
    "ui_grant_create": P.STUDY_SHARE,
    "ui_grant_revoke": P.STUDY_SHARE,
    # the web viewer (yunying.web.viewer): the page needs study access; its code is public
    "viewer_page": P.STUDY_READ,
    "study_priors": P.STUDY_READ,
    # downloads (yunying.api.routes.downloads): the study in scope to make one; the parts only to their maker
    "downloads_create": P.STUDY_READ,
    "downloads_get": P.STUDY_READ,
    "downloads_part": P.STUDY_READ,
    "viewer_asset": PUBLIC,
    # the phone pages of the cloud film (yunying.web.mobile): one public page; the API decides what it shows
    "mobile_home_page": PUBLIC,
    "mobile_open_page": PUBLIC,
    "mobile_exams_page": PUBLIC,
    "mobile_exam_page": PUBLIC,
    "mobile_shares_page": PUBLIC,
    "mobile_access_page": PUBLIC,
    "share_entry_page": PUBLIC,
    # the phone viewer (yunying.web.mobile_viewer): same as the web viewer, assets shared with it
    "mobile_viewer_page": P.STUDY_READ,
    # cloud film (yunying.api.routes.cloudfilm, docs/cloudfilm.md): opening a link is public, rate-limited
    "cloudfilm_open": PUBLIC,
    "cloudfilm_code": PUBLIC,
    "cloudfilm_verify": PUBLIC,
    "cloudfilm_cover": P.STUDY_READ,  # the exam's own hospital only (others: 404)
    "cloudfilm_send": P.STUDY_READ,
    "cloudfilm_settings_get": P.CLOUDFILM_MANAGE,
    "cloudfilm_settings_put": P.CLOUDFILM_MANAGE,
    "notifications_list": P.CLOUDFILM_MANAGE,
    "ui_outbox": P.CLOUDFILM_MANAGE,
    # the patient space (yunying.api.routes.patient): a verified patient's session; the three views also a
    # share visitor's (yunying.api.routes.share_views), scoped to the share
    "patient_me": P.CLOUDFILM_VIEW,
    "patient_exams": P.CLOUDFILM_VIEW,
    "patient_report": P.CLOUDFILM_VIEW,
    "patient_hide": P.PATIENT_SELF,
    "patient_unhide": P.PATIENT_SELF,
    "patient_access_log": P.PATIENT_SELF,
    "patient_blocks": P.PATIENT_SELF,
    "patient_block_add": P.PATIENT_SELF,
    "patient_block_remove": P.PATIENT_SELF,
    "patient_logout": P.PATIENT_SELF,
}

# The only routes a locked session (idle, or locked by its user) may still call.
WHILE_LOCKED: frozenset[str] = frozenset({"session_get", "session_unlock", "session_logout", "ui_logout"})

# Public routes counted per client address in fixed one-minute windows shared by every node:
# "login" → ``login_rate_per_minute`` (failed HTTP Basic logins count there too), "public" →
# ``public_rate_per_minute``. The health check is left out: load balancers poll it.
RATE_LIMITED: dict[str, str] = {
    "session_login": "login",
    "home": "public",
    "openapi": "public",
    "swagger_ui_html": "public",
    "swagger_ui_redirect": "public",
    "ui_login": "public",
    "ui_login_submit": "login",
    **{operation: "public" for operation in (
        "mobile_home_page", "mobile_open_page", "mobile_exams_page", "mobile_exam_page", "mobile_shares_page",
        "mobile_access_page", "share_entry_page")},
    "share_info": "public",
    "share_open": "login",  # guessing share passwords counts like guessing logins (and locks the share)
    "cloudfilm_open": "public",
    "cloudfilm_code": "login",  # sends an SMS: the stricter bucket
    "cloudfilm_verify": "login",
}
