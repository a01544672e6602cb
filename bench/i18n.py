"""What saying a stored screening again in Khmer or French costs an answer (docs/i18n.md).

    .venv/bin/python bench/i18n.py [--rounds 20]

The golden households (tests/golden/households.yaml) are screened in English by the shipped catalogue, as
they are stored; each screening is then said again in km and fr (app/schemes/language.py), as GET and POST
answers do for a reader who asks for either. The floor, measured in the same run on the same screenings, is
what every answer does anyway: serialising the screening to JSON (`model_dump_json`). In-process, no HTTP,
one core; on a shared machine only the ratio to the floor is comparable across runs."""

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from types import SimpleNamespace

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.schemas.households import MemberCreate  # noqa: E402
from app.schemas.screening import ScreeningRead  # noqa: E402
from app.schemes.facts import FlatMember  # noqa: E402
from app.schemes.language import localise_screening  # noqa: E402
from app.schemes.registry import load_registry  # noqa: E402
from app.services.screening import _counts, _determination_read, _ordered_rows, build_request, run_schemes  # noqa: E402

AS_OF = date(2026, 11, 29)


async def stored_screenings(catalogue) -> list[ScreeningRead]:
    screenings = []
    for case in yaml.safe_load((ROOT / "tests" / "golden" / "households.yaml").read_text(encoding="utf-8")):
        spec, as_of = case["household"], case.get("as_of", AS_OF)
        idpoor = spec.get("idpoor") or {}
        household = SimpleNamespace(id=None, village_code="17010101", area_type=spec["area_type"],
                                    idpoor_level=idpoor.get("level"), idpoor_valid_until=idpoor.get("valid_until"))
        members = [FlatMember(MemberCreate.model_validate(
            {k: v for k, v in raw.items() if k != "expect"} | {"given_name": f"M{i}", "family_name": "Bench"}))
            for i, raw in enumerate(case["members"])]
        request = replace(build_request(household, members, frozenset(spec["consent"]), as_of), language="en")
        rows = _ordered_rows(await run_schemes(catalogue.in_force(as_of), request), [])
        columns = [r.columns() for r in rows]
        screenings.append(ScreeningRead(
            id=None, household_id=None, screened_at=datetime.now(UTC), screened_by=None, trigger="preview", as_of=as_of,
            schemes=[], counts=_counts(c["outcome"] for c in columns),
            determinations=[_determination_read(c, r.member_index) for c, r in zip(columns, rows)]))
    return screenings


def timed(work, screenings, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        for screening in screenings:
            started = time.perf_counter()
            work(screening)
            times.append((time.perf_counter() - started) * 1000)
    return times


def show(label: str, times: list[float]) -> str:
    ordered = sorted(times)
    return f"{label}: p50 {statistics.median(ordered):.2f} ms, p95 {ordered[int(len(ordered) * 0.95)]:.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    catalogue = load_registry(SimpleNamespace(schemes_path=None), plugins=False)
    screenings = asyncio.run(stored_screenings(catalogue))
    per = statistics.mean(len(s.determinations) for s in screenings)
    print(f"{len(screenings)} screenings, {per:.1f} determinations each on average, {args.rounds} rounds")
    timed(lambda s: localise_screening(catalogue, s, "km"), screenings, 2)  # warm the messages' caches
    floor = timed(lambda s: s.model_dump_json(), screenings, args.rounds)
    for language in ("km", "fr"):
        said = timed(lambda s: localise_screening(catalogue, s, language), screenings, args.rounds)
        print(f"{show(f'said again in {language}', said)}   ({statistics.median(said) / statistics.median(floor):.1f}x the floor)")
    print(show("floor: the same screening to JSON", floor))


if __name__ == "__main__":
    main()
