"""The film as data: layouts per modality, sheet geometry, window presets, what is not an image, fonts.

Read together with docs/cloudfilm.md ("Films"), which states the same rules for radiologists.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    columns: int
    rows: int

    @property
    def cells(self) -> int:
        return self.columns * self.rows

    @property
    def name(self) -> str:
        return f"{self.columns}x{self.rows}"


L = Layout
# Layouts a modality may use, smallest first: the smallest that holds every image on one sheet is
# used, else the largest (then the images fill several sheets). Modality (0008,0060) values, PS3.3 C.7.3.1.1.1.
LAYOUTS: dict[str, tuple[Layout, ...]] = {
    "CT": (L(4, 5), L(5, 6)),
    "MR": (L(4, 5), L(5, 6)),
    "PT": (L(4, 5), L(5, 6)),
    "CR": (L(1, 1), L(1, 2)),
    "DX": (L(1, 1), L(1, 2)),
    "DR": (L(1, 1), L(1, 2)),
    "RG": (L(1, 1), L(1, 2)),
    "MG": (L(2, 2),),
    "US": (L(3, 4),),
}
DEFAULT_LAYOUTS: tuple[Layout, ...] = (L(3, 4),)

# A sheet is a 14 x 17 inch film (portrait), at ``film_dpi`` pixels per inch (default 150: 2100 x 2550).
SHEET_INCHES = (14.0, 17.0)
# Parts of the sheet, in inches: outer margin, header band, gap between cells, label strip under each image.
MARGIN_IN = 0.2
HEADER_IN = 0.85
GAP_IN = 0.05
LABEL_IN = 0.2

# Window (center, width) when an image has no Window Center/Width and no VOI LUT (PS3.3 C.11.2):
# (modality, Body Part Examined) first, then (modality, "*"). Values in Hounsfield units for CT.
WINDOW_PRESETS: dict[tuple[str, str], tuple[float, float]] = {
    ("CT", "HEAD"): (40.0, 80.0),
    ("CT", "BRAIN"): (40.0, 80.0),
    ("CT", "LUNG"): (-600.0, 1500.0),
    ("CT", "CHEST"): (40.0, 400.0),
    ("CT", "ABDOMEN"): (40.0, 400.0),
    ("CT", "PELVIS"): (40.0, 400.0),
    ("CT", "SPINE"): (400.0, 1800.0),
    ("CT", "EXTREMITY"): (400.0, 1800.0),
    ("CT", "*"): (40.0, 400.0),
}

# Image Type (0008,0008) value 3 of planning images that are not printed (PS3.3 C.8.2.1.1.1, C.8.16.1).
LOCALIZER_TYPES = frozenset({"LOCALIZER", "SCOUT", "SCANOGRAM"})

# Storage SOP classes with pixel data that are not images to print (PS3.4 B.5).
NOT_IMAGES: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.66.4": "Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.66.7": "Label Map Segmentation Storage",
    "1.2.840.10008.5.1.4.1.1.30": "Parametric Map Storage",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose Storage",
    "1.2.840.10008.5.1.4.1.1.104.1": "Encapsulated PDF Storage",
    "1.2.840.10008.5.1.4.1.1.104.2": "Encapsulated CDA Storage",
}
KEY_OBJECT_SELECTION = "1.2.840.10008.5.1.4.1.1.88.59"  # PS3.3 A.35.4

# Fonts tried in order (the first that exists): CJK glyphs first, so Chinese names print.
FONTS: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf"),
)


def layouts_for(modality: str) -> tuple[Layout, ...]:
    return LAYOUTS.get(modality.upper(), DEFAULT_LAYOUTS)


def choose_layout(modality: str, count: int) -> Layout:
    """The smallest layout of ``modality`` that holds ``count`` images on one sheet, else its largest."""
    options = layouts_for(modality)
    for layout in options:
        if count <= layout.cells:
            return layout
    return options[-1]


def preset(modality: str, body_part: str) -> tuple[float, float] | None:
    key = modality.upper()
    return WINDOW_PRESETS.get((key, body_part.strip().upper())) or WINDOW_PRESETS.get((key, "*"))


def sheet_pixels(dpi: int) -> tuple[int, int]:
    return round(SHEET_INCHES[0] * dpi), round(SHEET_INCHES[1] * dpi)
