"""Cloud film (云胶片, decision 0010): exam tokens, one-time codes, patient sessions and space, cover sheets,
hospital settings. Framework-free; the HTTP adapters are ``yunying.api.routes.cloudfilm`` and ``.patient``."""
