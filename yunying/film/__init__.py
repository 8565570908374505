"""Electronic film sheets (云胶片, CF-1, CF-5, CF-12): a study's images laid out like a printed film.

* :mod:`yunying.film.layout` — the rules as data (layouts per modality, sheet geometry, window presets).
* :mod:`yunying.film.select` — which images, in which order, with which window.
* :mod:`yunying.film.sheets` — drawing: header, cells, labels, scale bars; PNG and PDF.
* :mod:`yunying.film.service` — queueing (report final, new images), the ``film`` job, reading.
"""
