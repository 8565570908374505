"""The share link's QR code (in the create answer) decodes, with a real reader, to exactly the link."""

from __future__ import annotations

import base64
from io import BytesIO

import zxingcpp
from PIL import Image

from yunying.api.routes.shares import qr_data_url


def test_qr_code_reads_back_as_the_share_url() -> None:
    url = "https://film.example.org/s/" + "Ab-_9" * 9
    data_url = qr_data_url(url)
    assert data_url.startswith("data:image/png;base64,")
    image = Image.open(BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    assert [r.text for r in zxingcpp.read_barcodes(image)] == [url]
