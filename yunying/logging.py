"""Logging set-up in one function: library globals too. No patient identifiers in logs."""

from __future__ import annotations

import logging
import warnings

from pynetdicom import _config as pynetdicom_config


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # pynetdicom logs C-FIND/C-MOVE identifiers (patient names and IDs) by default: never.
    pynetdicom_config.LOG_REQUEST_IDENTIFIERS = False
    pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = False
    pynetdicom_config.LOG_HANDLER_LEVEL = "none"
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # request lines carry study UIDs
    # Codec failures are expected and handled (the data is kept as it was); we log our own one-line summary.
    logging.getLogger("openjpeg").setLevel(logging.CRITICAL)
    logging.getLogger("pydicom.pixels.encoders").setLevel(logging.CRITICAL)
    # pydicom warns about each invalid value it meets (with the value): archives meet many, keep them quiet
    warnings.filterwarnings("ignore", module="pydicom")
    # uvicorn's access log prints URLs, and QIDO URLs carry search values (names, IDs): off.
    logging.getLogger("uvicorn.access").disabled = True
