"""Server-rendered web pages: sign-in, study search and the administration of a regional platform.

An adapter like ``yunying.api.routes``: pages (``pages``, ``admin``) render Jinja2 templates with
autoescaping (``render``) in Simplified Chinese or English (``i18n``); what they change is done by
framework-free use cases (``directory``), every change audited. Permissions come from the one route
table, ``yunying.api.policy``; CSRF and origin checks from ``yunying.api.deps`` and ``yunying.api.security``.
See docs/decisions/0007-admin-pages-server-rendered.md.
"""
