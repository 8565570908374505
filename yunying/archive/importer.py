"""Import DICOM files from folders (demo data, migrations) through the one ingest path."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from yunying.archive.ingest import Ingest

SKIP_SUFFIXES = {".md", ".txt", ".xml", ".json", ".csv", ".py", ".sh"}


@dataclass
class ImportSummary:
    outcomes: Counter[str] = field(default_factory=Counter)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def describe(self) -> str:
        counts = ", ".join(f"{n} {k}" for k, n in sorted(self.outcomes.items()))
        return f"import: {counts or 'nothing'}"


def _files(paths: Iterable[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and child.suffix.lower() not in SKIP_SUFFIXES and child.name != "SHA256SUMS":
                    yield child
        elif path.is_file():
            yield path


def import_paths(ingest: Ingest, paths: Iterable[Path], institution_id: int | None) -> ImportSummary:
    """Store every file under ``paths`` as data of ``institution_id``."""
    summary = ImportSummary()
    for path in _files(paths):
        result = ingest.store_instance(path.read_bytes(), origin=f"import:{path.name}", institution_id=institution_id)
        summary.outcomes[result.outcome.value] += 1
        if not result.ok:
            summary.refused.append((str(path), result.reason))
    return summary
