"""Drawing film sheets: header, a grid of cells (image, labels, scale bar), PNG per sheet, one PDF.

Every cell's image is the instance rendered by :func:`yunying.dicom.render.render_pixels` with the
cell's window, resized (Lanczos) to fit the image box with its physical aspect (Pixel Spacing), so the
pixels on the film are the archive's reference rendering. Labels sit in a strip under the image,
never over it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont
from pydicom.dataset import Dataset

from yunying.dicom.render import render_pixels
from yunying.film.layout import FONTS, GAP_IN, HEADER_IN, LABEL_IN, MARGIN_IN, SHEET_INCHES, Layout, sheet_pixels
from yunying.film.select import FilmImage

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
SCALE_BARS_CM = (20, 10, 5, 2, 1)
WHITE, GREY = 255, 170


@dataclass(frozen=True)
class Header:
    """The text at the top of every sheet (also given to API clients as JSON)."""

    institution: str = ""
    patient_name: str = ""
    sex: str = ""
    age: str = ""
    patient_id: str = ""
    date: str = ""  # YYYY-MM-DD
    modality: str = ""
    description: str = ""
    accession: str = ""

    def as_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


@dataclass
class Cell:
    image: FilmImage
    row: int
    col: int
    box: tuple[int, int, int, int]  # x, y, width, height of the image pixels on the sheet
    spacing: str  # "pixel" | "imager" | "" (no scale bar)


@dataclass
class Sheet:
    n: int
    picture: Image.Image
    layout: Layout
    cells: list[Cell] = field(default_factory=list)


def find_font(configured: str = "") -> Path | None:
    """The configured font, else the first of :data:`FONTS` that exists (None: Pillow's built-in font)."""
    for path in ([Path(configured)] if configured else []) + list(FONTS):
        if path.is_file():
            return path
    return None


def _font(path: Path | None, size: int) -> Font:
    if path is None:
        return ImageFont.load_default(size)
    return ImageFont.truetype(str(path), size)


def _has_glyphs(font: Font, text: str) -> bool:
    """Whether ``font`` draws ``text`` with real glyphs (not the 'missing glyph' box)."""
    if not isinstance(font, ImageFont.FreeTypeFont):
        return text.isascii()
    missing = _glyph(font, "\U0010fffd")
    return all(ch.isspace() or _glyph(font, ch) != missing for ch in text)


def _glyph(font: ImageFont.FreeTypeFont, ch: str) -> bytes:
    canvas = Image.new("L", (round(font.size * 2), round(font.size * 2)), 0)
    ImageDraw.Draw(canvas).text((0, 0), ch, font=font, fill=255)
    return canvas.tobytes()


def person_name(value: str, font: Font) -> str:
    """A PN for print: ideographic (e.g. 王小东) and alphabetic (Wang XiaoDong) when both exist and the
    font has the glyphs; the alphabetic form alone otherwise."""
    groups = [g for g in str(value or "").split("=")]
    alphabetic = " ".join(p for p in groups[0].split("^") if p).strip() if groups else ""
    ideographic = "".join(p for p in groups[1].split("^") if p).strip() if len(groups) > 1 else ""
    if ideographic and _has_glyphs(font, ideographic):
        return f"{ideographic} {alphabetic}".strip()
    return alphabetic or ideographic


def _age(ds: Dataset) -> str:
    age = str(ds.get("PatientAge", "") or "").strip()
    if age:
        return age.lstrip("0") or age
    birth, date = str(ds.get("PatientBirthDate", "") or ""), str(ds.get("StudyDate", "") or "")
    if len(birth) == 8 and len(date) == 8 and birth.isdigit() and date.isdigit():
        years = int(date[:4]) - int(birth[:4]) - (date[4:] < birth[4:])
        return f"{years}Y" if years >= 0 else ""
    return ""


def header_of(ds: Dataset, institution: str, modality: str, font_path: Path | None) -> Header:
    """The header fields from an instance of the study; ``institution`` is the owning hospital's name."""
    date = str(ds.get("StudyDate", "") or "")
    return Header(institution=institution or str(ds.get("InstitutionName", "") or ""),
                  patient_name=person_name(str(ds.get("PatientName", "") or ""), _font(font_path, 20)),
                  sex=str(ds.get("PatientSex", "") or ""), age=_age(ds), patient_id=str(ds.get("PatientID", "") or ""),
                  date=f"{date[:4]}-{date[4:6]}-{date[6:8]}" if len(date) == 8 else date, modality=modality,
                  description=str(ds.get("StudyDescription", "") or ""), accession=str(ds.get("AccessionNumber", "") or ""))


def _spacing(ds: Dataset, frame: int) -> tuple[tuple[float, float] | None, str]:
    """(row spacing, column spacing) in mm and where it came from: Pixel Spacing (also of a frame's Pixel
    Measures macro), else Imager Pixel Spacing (at the detector: "imager"), else none."""
    sources: list[Any] = []
    for groups_kw, at in (("PerFrameFunctionalGroupsSequence", frame - 1), ("SharedFunctionalGroupsSequence", 0)):
        groups = ds.get(groups_kw)
        if groups and at < len(groups) and groups[at].get("PixelMeasuresSequence"):
            sources.append(groups[at].PixelMeasuresSequence[0].get("PixelSpacing"))
    sources.append(ds.get("PixelSpacing"))
    for value, kind in [(v, "pixel") for v in sources] + [(ds.get("ImagerPixelSpacing"), "imager")]:
        try:
            row, col = float(value[0]), float(value[1])
        except (TypeError, ValueError, IndexError):
            continue
        if row > 0 and col > 0:
            return (row, col), kind
    return None, ""


def _fit(size: tuple[float, float], box: tuple[int, int]) -> tuple[int, int]:
    scale = min(box[0] / size[0], box[1] / size[1])
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def cell_picture(ds: Dataset, image: FilmImage, box: tuple[int, int]) -> tuple[Image.Image, str, float | None]:
    """The rendered frame fitted into ``box`` (physical aspect), how spacing is known, and mm per sheet pixel."""
    picture = Image.fromarray(render_pixels(ds, image.frame, image.window))
    spacing, kind = _spacing(ds, image.frame)
    physical = (picture.width * spacing[1], picture.height * spacing[0]) if spacing else (picture.width, picture.height)
    target = _fit(physical, box)
    if target != picture.size:
        picture = picture.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    mm_per_px = physical[0] / target[0] if spacing else None
    return picture, kind, mm_per_px


class SheetPainter:
    """Composes the sheets of one film (``dpi`` pixels per inch on 14 x 17 inch sheets)."""

    def __init__(self, dpi: int, font_path: Path | None) -> None:
        self.dpi = dpi
        self.size = sheet_pixels(dpi)
        self.font_path = font_path
        self.title = _font(font_path, round(0.22 * dpi))
        self.text = _font(font_path, round(0.13 * dpi))
        self.small = _font(font_path, round(0.11 * dpi))

    def _inches(self, value: float) -> int:
        return round(value * self.dpi)

    def _grid(self, layout: Layout) -> tuple[int, int, int, int, int]:
        margin, gap = self._inches(MARGIN_IN), self._inches(GAP_IN)
        top = margin + self._inches(HEADER_IN)
        cell_w = (self.size[0] - 2 * margin - gap * (layout.columns - 1)) // layout.columns
        cell_h = (self.size[1] - top - margin - gap * (layout.rows - 1)) // layout.rows
        return margin, top, cell_w, cell_h, gap

    def paint(self, images: list[FilmImage], layout: Layout, header: Header,
              read: Callable[[FilmImage], Dataset]) -> list[Sheet]:
        pages = [images[i:i + layout.cells] for i in range(0, len(images), layout.cells)]
        return [self._sheet(n, len(pages), page, layout, header, read) for n, page in enumerate(pages, start=1)]

    def _sheet(self, n: int, total: int, page: list[FilmImage], layout: Layout, header: Header,
               read: Callable[[FilmImage], Dataset]) -> Sheet:
        left, top, cell_w, cell_h, gap = self._grid(layout)
        label_h = self._inches(LABEL_IN)
        pictures = []
        for image in page:
            pictures.append(cell_picture(read(image), image, (cell_w, cell_h - label_h)))
        mode = "RGB" if any(p.mode == "RGB" for p, _k, _m in pictures) else "L"
        sheet = Sheet(n, Image.new(mode, self.size, 0), layout)
        draw = ImageDraw.Draw(sheet.picture)
        self._header(draw, header, n, total, mode)
        for index, (image, (picture, kind, mm_per_px)) in enumerate(zip(page, pictures, strict=True)):
            row, col = divmod(index, layout.columns)
            x, y = left + col * (cell_w + gap), top + row * (cell_h + gap)
            px, py = x + (cell_w - picture.width) // 2, y + (cell_h - label_h - picture.height) // 2
            sheet.picture.paste(picture.convert(mode), (px, py))
            sheet.cells.append(Cell(image, row, col, (px, py, picture.width, picture.height), kind))
            self._labels(draw, image, (x, y + cell_h - label_h, cell_w, label_h), mm_per_px, kind, mode)
        return sheet

    def _ink(self, level: int, mode: str) -> int | tuple[int, int, int]:
        return (level, level, level) if mode == "RGB" else level

    def _header(self, draw: ImageDraw.ImageDraw, header: Header, n: int, total: int, mode: str) -> None:
        margin = self._inches(MARGIN_IN)
        white = self._ink(WHITE, mode)
        draw.text((margin, margin), header.institution, font=self.title, fill=white)
        draw.text((self.size[0] - margin, margin), f"{n}/{total}", font=self.title, fill=white, anchor="ra")
        line2 = "   ".join(p for p in (header.patient_name, f"{header.sex} {header.age}".strip(),
                                        f"ID {header.patient_id}" if header.patient_id else "") if p)
        line3 = "   ".join(p for p in (header.date, header.modality, header.description,
                                        f"Acc {header.accession}" if header.accession else "") if p)
        step = self._inches(0.2)
        draw.text((margin, margin + self._inches(0.3)), line2, font=self.text, fill=white)
        draw.text((margin, margin + self._inches(0.3) + step), line3, font=self.text, fill=white)

    def _labels(self, draw: ImageDraw.ImageDraw, image: FilmImage, strip: tuple[int, int, int, int],
                mm_per_px: float | None, kind: str, mode: str) -> None:
        x, y, width, height = strip
        middle = y + height // 2
        text = f"Se {image.series_number if image.series_number is not None else '-'} " \
               f"Im {image.instance_number if image.instance_number is not None else '-'}"
        if image.frames > 1:
            text += f" Fr {image.frame}"
        if image.key:
            text += "  KEY"
        voi = f"W {image.window[1]:g} L {image.window[0]:g}" if image.window else {"lut": "VOI LUT"}.get(image.voi, "auto")
        draw.text((x + 2, middle), f"{text}   {voi}", font=self.small, fill=self._ink(GREY, mode), anchor="lm")
        if mm_per_px is None:
            return
        for cm in SCALE_BARS_CM:  # the longest bar that takes at most a third of the cell
            length = round(cm * 10 / mm_per_px)
            if length <= width // 3:
                break
        else:
            return
        right = x + width - 2
        ink = self._ink(WHITE, mode)
        draw.line([(right - length, middle), (right, middle)], fill=ink, width=max(1, self.dpi // 75))
        for tick in (right - length, right):
            draw.line([(tick, middle - height // 4), (tick, middle + height // 4)], fill=ink, width=max(1, self.dpi // 75))
        label = f"{cm} cm" + (" (detector)" if kind == "imager" else "")
        draw.text((right - length - 6, middle), label, font=self.small, fill=ink, anchor="rm")


def png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def pdf_bytes(pictures: list[Image.Image]) -> bytes:
    """All sheets as one PDF, one 14 x 17 inch page each, pixels Flate-compressed (lossless)."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen.canvas import Canvas

    buffer = io.BytesIO()
    page = (SHEET_INCHES[0] * 72, SHEET_INCHES[1] * 72)
    canvas = Canvas(buffer, pagesize=page, pageCompression=1)
    canvas.setTitle("Film")
    for picture in pictures:
        canvas.drawImage(ImageReader(picture), 0, 0, width=page[0], height=page[1])
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()
