"""The cloud-film cover sheet (CF-2): a one-page A4 PDF with the exam's QR code, printed with the report.

Drawn with reportlab; the QR code (segno, error correction M) is an embedded PNG image so it stays
sharp at any printer resolution and can be read back from the PDF. Chinese text needs a CJK font:
WenQuanYi Micro Hei when installed (Debian ``fonts-wqy-microhei``), else reportlab's built-in
``STSong-Light`` CID font (no file needed; viewers supply the glyphs).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path

import segno
from reportlab.lib.colors import HexColor, black
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

log = logging.getLogger(__name__)
CJK_FONT_FILES = (Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
                  Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"))
FALLBACK_FONT = "STSong-Light"
INSTRUCTIONS = (
    "1. 用手机扫描二维码（微信或相机）。 Scan the QR code with your phone (WeChat or camera).",
    "2. 输入登记的手机号或身份证号，获取短信验证码。 Enter the phone or ID card number on file to get a code by SMS.",
    "3. 输入验证码，查看报告、胶片和影像。 Enter the code to see your report, films and images.",
    "请妥善保管本页，勿将二维码和验证码告诉他人。 Keep this page safe; do not share the QR code or the code.",
)


@dataclass(frozen=True)
class Cover:
    hospital: str
    brand_color: str
    patient_name: str
    patient_id: str
    modality: str
    study_date: str  # YYYYMMDD
    description: str
    accession: str
    url: str
    valid_until: datetime


@cache
def cjk_font() -> str:
    """The registered name of a font with Chinese glyphs."""
    for path in CJK_FONT_FILES:
        if path.exists():
            try:
                pdfmetrics.registerFont(TTFont("YunyingCJK", str(path), subfontIndex=0))
                return "YunyingCJK"
            except Exception:  # a damaged or unsupported font file: the next one, or the built-in font
                log.warning("cover sheet: cannot use font %s", path)
    pdfmetrics.registerFont(UnicodeCIDFont(FALLBACK_FONT))
    return FALLBACK_FONT


def qr_png(url: str, scale: int = 8) -> bytes:
    out = io.BytesIO()
    segno.make(url, error="m", micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def _date(text: str) -> str:
    return f"{text[:4]}-{text[4:6]}-{text[6:]}" if len(text) == 8 else text


def person_name(name: str) -> str:
    """A DICOM PN for print: the ideographic group when there is one, else ``Family Given``."""
    groups = name.split("=")
    chosen = groups[1] if len(groups) > 1 and groups[1] else groups[0]
    return " ".join(p for p in chosen.split("^") if p)


def render(cover: Cover) -> bytes:
    """The cover sheet as PDF bytes."""
    font = cjk_font()
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=A4, pageCompression=1)
    canvas.setTitle("云胶片 Cloud film")
    width, height = A4
    brand = HexColor(cover.brand_color)
    canvas.setFillColor(brand)
    canvas.rect(0, height - 28 * mm, width, 28 * mm, stroke=0, fill=1)
    canvas.setFillColorRGB(1, 1, 1)
    canvas.setFont(font, 18)
    canvas.drawString(18 * mm, height - 17 * mm, cover.hospital or "云影 Yunying")
    canvas.setFont(font, 11)
    canvas.drawRightString(width - 18 * mm, height - 17 * mm, "云胶片 · Cloud film")
    canvas.setFillColor(black)
    y = height - 44 * mm
    rows = (("姓名 Name", person_name(cover.patient_name)), ("病历号 Patient ID", cover.patient_id),
            ("检查 Exam", f"{cover.modality} {cover.description}".strip()), ("日期 Date", _date(cover.study_date)),
            ("检查号 Accession", cover.accession))
    for label, value in rows:
        canvas.setFont(font, 10)
        canvas.drawString(18 * mm, y, label)
        canvas.setFont(font, 12)
        canvas.drawString(58 * mm, y, value)
        y -= 8 * mm
    side = 70 * mm
    canvas.drawImage(ImageReader(io.BytesIO(qr_png(cover.url))), (width - side) / 2, y - side - 6 * mm, side, side)
    y -= side + 14 * mm
    canvas.setFont(font, 11)
    canvas.drawCentredString(width / 2, y, f"有效期至 Valid until {cover.valid_until.strftime('%Y-%m-%d %H:%M')} UTC")
    y -= 12 * mm
    canvas.setFont(font, 9)
    for line in INSTRUCTIONS:
        canvas.drawString(18 * mm, y, line)
        y -= 6.5 * mm
    canvas.showPage()
    canvas.save()
    return out.getvalue()
