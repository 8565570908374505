"""Audit entries as CSV or Excel (XLSX) for auditors: the API's export and ``yunying audit export``.

Columns are the entry's fields plus ``prev_hash`` and ``hash``, times as ISO 8601 UTC with
microseconds (the chain's own text form), so the XLSX (and the JSON API) hold exactly what was
hashed. In CSV a text starting with ``= + - @`` or a tab is prefixed with ``'`` so a spreadsheet
does not run it as a formula (a failed login's user name is attacker-chosen); XLSX cells are typed
as text instead and keep their value.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import IO

from yunying.auth.audit import Entry, iso_utc

COLUMNS = ("seq", "at", "actor", "actor_institution", "actor_role", "action", "subject", "source", "outcome", "detail",
           "prev_hash", "hash")
FORMATS = {"csv": "text/csv; charset=utf-8",
           "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
MAX_XLSX_ROWS = 1_048_575  # Excel's 1,048,576 rows minus the header
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def values_of(entry: Entry) -> list[str | int]:
    return [entry.seq, iso_utc(entry.at), entry.actor, entry.actor_institution, entry.actor_role, entry.action,
            entry.subject, entry.source, entry.outcome, entry.detail, entry.prev_hash, entry.hash]


def _csv_safe(value: str | int) -> str | int:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and value != "-":
        return "'" + value
    return value


def csv_chunks(entries: Iterable[Entry], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """CSV text (RFC 4180, header first) in chunks of ``rows_per_chunk`` rows, for streaming."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    pending = 0
    for entry in entries:
        writer.writerow([_csv_safe(v) for v in values_of(entry)])
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()


def write_xlsx(entries: Iterable[Entry], target: IO[bytes], *, title: str = "audit") -> int:
    """Write an XLSX workbook of ``entries`` to ``target``; return the number of rows.

    Raises ValueError past Excel's row limit (callers count first and ask for a narrower range).
    """
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title)
    sheet.append(list(COLUMNS))
    rows = 0
    for entry in entries:
        rows += 1
        if rows > MAX_XLSX_ROWS:
            raise ValueError(f"more than {MAX_XLSX_ROWS} entries do not fit one worksheet: narrow the range")
        cells = []
        for value in values_of(entry):
            if isinstance(value, str):
                cell = WriteOnlyCell(sheet, value=ILLEGAL_CHARACTERS_RE.sub("\ufffd", value))
                cell.data_type = "s"  # text, even when it starts with "=" (never a formula)
            else:
                cell = WriteOnlyCell(sheet, value=value)
            cells.append(cell)
        sheet.append(cells)
    workbook.save(target)
    return rows
