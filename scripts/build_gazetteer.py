"""Build app/data/gazetteer.csv.gz, the national gazetteer Guichet ships, from the NCDD gazetteer as the
pumi project publishes it (app/data/GAZETTEER_SOURCES.md says why this source and what is changed).

    git clone https://github.com/dwilkie/pumi && git -C pumi checkout 4bd000ba81e51fec99282858315180903e2aedc5
    .venv/bin/python scripts/build_gazetteer.py pumi/data

The output is the `guichet locations import` format (code,name,level,parent_code,name_km), sorted by code,
gzipped without a timestamp: the same input gives the same bytes."""

import csv
import gzip
import io
import re
import sys
import unicodedata
from pathlib import Path

import yaml

OUT = Path(__file__).resolve().parent.parent / "app" / "data" / "gazetteer.csv.gz"
LEVELS = {"provinces": "province", "districts": "district", "communes": "commune", "villages": "village"}
# The one name the source leaves blank; the Ministry of Economy and Finance's 2025 list has the same code
# with the same Khmer name (ប៉ៃឡាំ) and this Latin one.
LATIN_GAPS = {"02010508": "Pailam"}


def clean(name: str) -> str:
    """Zero-width spaces dropped, runs of spaces made one, NFC."""
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", name).replace("\u200b", "")).strip()


def rows(source: Path) -> list[dict[str, str]]:
    out = []
    for group, level in LEVELS.items():
        units = yaml.load((source / f"{group}.yml").read_text(encoding="utf-8"), Loader=yaml.CSafeLoader)[group]
        for code, unit in units.items():
            latin = clean(unit["name"]["latin"]) or LATIN_GAPS[code]
            out.append({"code": code, "name": latin[0].upper() + latin[1:], "level": level,
                        "parent_code": code[:-2], "name_km": clean(unit["name"]["km"])})
    return sorted(out, key=lambda row: row["code"])


def main(source: str) -> None:
    from app.services.locations import parse_gazetteer  # the same checks as `guichet locations import`

    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=["code", "name", "level", "parent_code", "name_km"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows(Path(source)))
    checked = parse_gazetteer(text.getvalue(), source="national")
    OUT.write_bytes(gzip.compress(text.getvalue().encode(), compresslevel=9, mtime=0))
    counts = {level: sum(r["level"] == level for r in checked) for level in LEVELS.values()}
    print(f"{OUT}: {counts}")


if __name__ == "__main__":
    main(*sys.argv[1:])
