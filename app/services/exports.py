"""A table of the dashboards as a file: CSV or XLSX (openpyxl). The page sends the table it shows, with
its column headers in the reader's language and the codes beside them (a second header row), so that the
labels have one home, the pages' catalogues; this module only formats, it reads no data."""

import csv
import io
import re
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def as_csv(columns: list[tuple[str, str]], rows: list[list[Any]]) -> bytes:
    """UTF-8 with a byte-order mark, which spreadsheet programs need to read Khmer right."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([label for _, label in columns])
    writer.writerow([code for code, _ in columns])
    writer.writerows([["" if v is None else str(v).lower() if isinstance(v, bool) else v for v in row] for row in rows])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def as_xlsx(title: str, columns: list[tuple[str, str]], rows: list[list[Any]]) -> bytes:
    book = Workbook(write_only=False)
    sheet = book.active
    sheet.title = re.sub(r"[\[\]:*?/\\]", " ", title)[:31] or "Guichet"
    sheet.append([label for _, label in columns])
    sheet.append([code for code, _ in columns])
    for cell in (*sheet[1], *sheet[2]):
        cell.font = Font(bold=cell.row == 1, italic=cell.row == 2)
    for row in rows:
        sheet.append(row)
    sheet.freeze_panes = "A3"
    for index, (code, label) in enumerate(columns, start=1):
        sheet.column_dimensions[sheet.cell(1, index).column_letter].width = max(10, min(40, len(label) + 4, len(code) + 4))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
