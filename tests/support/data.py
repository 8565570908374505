"""The shared real DICOM test data (../shared/dicom) and what the archive should do with each file."""

from __future__ import annotations

import os
from pathlib import Path

SHARED = Path(os.environ.get("YUNYING_SHARED_DICOM", Path(__file__).resolve().parents[3] / "shared" / "dicom"))
NOT_DICOM = {"MANIFEST.md", "SHA256SUMS"}

# Files that are not storable instances, with the reason the archive gives (MANIFEST edge_cases table
# and docs/decisions/0003-ingest-validation.md).
REFUSED: dict[str, str] = {
    "edge_cases/no_meta.dcm": "not a DICOM Part 10 file",
    "edge_cases/ExplVR_BigEndNoMeta.dcm": "not a DICOM Part 10 file",
    "edge_cases/meta_missing_tsyntax.dcm": "no Transfer Syntax UID",
    "edge_cases/UN_sequence.dcm": "missing SOP Class UID",
    "edge_cases/empty_charset_LEI.dcm": "missing SOP Class UID",
    "charset/chrSQEncoding.dcm": "missing SOP Class UID",
    "charset/chrSQEncoding1.dcm": "missing SOP Class UID",
    "misc_syntax_and_iods/HTJ2KLossless_08_RGB.dcm": "missing Study Instance UID",
}
# Same SOP Instance UID as an earlier file (MANIFEST general notes): the first stored wins.
DUPLICATES_OF = {
    "edge_cases/MR_small_implicit.dcm": "edge_cases/MR_small_bigendian.dcm",
    "edge_cases/MR_truncated.dcm": "edge_cases/MR_small_bigendian.dcm",
    "charset/chrFrenMulti.dcm": "charset/chrFren.dcm",
    "charset/chrJapMultiExplicitIR6.dcm": "charset/chrJapMulti.dcm",
}
NOT_RENDERABLE = {
    "edge_cases/JPEG2000-embedded-sequence-delimiter.dcm",
    "edge_cases/MR1_JPLY_invalid_SOS",
    "edge_cases/MR_truncated.dcm",
    "edge_cases/badVR.dcm",
}


def all_files() -> list[Path]:
    """Every file of the shared data set except manifests and DICOMDIR media directories."""
    files = []
    for path in sorted(SHARED.rglob("*")):
        if not path.is_file() or path.name in NOT_DICOM or path.suffix in (".md", ".xml"):
            continue
        if path.name.startswith("DICOMDIR"):
            continue
        files.append(path)
    return files


def rel(path: Path) -> str:
    return path.relative_to(SHARED).as_posix()


def storable_files() -> list[Path]:
    return [p for p in all_files() if rel(p) not in REFUSED]


def ct_series() -> list[Path]:
    return sorted((SHARED / "ct_abdomen_pancreas_tcia").rglob("*.dcm")) or sorted(
        p for p in (SHARED / "ct_abdomen_pancreas_tcia").rglob("*") if p.is_file())
