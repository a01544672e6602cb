"""Recall and precision of cross-script name search on real Khmer names and their real Latin spellings.

    .venv/bin/python bench/name_recall.py [--misses 15] [--data bench/data/khmer_latin_names.csv]

Each person of the test set (bench/data/khmer_latin_names.csv, sources in bench/data/SOURCES.md) is
registered once in Khmer script and once per real Latin spelling. Then:
- Latin -> Khmer: each real Latin spelling, as a search, against the Khmer-registered rows;
- Khmer -> Latin: each Khmer name, as a search, against the Latin-registered rows;
- given name only: the Latin given name against the Khmer rows (recall only: many people share a name).
A search compares keys as app.text.khmer.matches does: every query key found in the row's, from a word
start (prefix) or anywhere (substring); the last scheme is the API's own search, the stored keys of a
row (app.services.names.name_keys) and the terms a query looks for in them (names.search_ways, what the
SQL LIKEs look for). Recall counts the queries that find their person; precision counts, of the rows a
query finds, those of its person. Each key scheme is measured, then the time per name of the functions."""

import argparse
import csv
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.services.names import fold, name_keys, search_ways  # noqa: E402
from app.text import khmer  # noqa: E402

DATA = Path(__file__).resolve().parent / "data" / "khmer_latin_names.csv"


def load(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [{**row, "latin": row["latin"].split("|")} for row in csv.DictReader(f)]


class Scheme:
    """How a row is stored (`index`), how a query is prepared (`prepare`), and whether it finds a row (`hit`)."""

    def __init__(self, index: Callable, prepare: Callable, hit: Callable[..., bool]):
        self.index, self.prepare, self.hit = index, prepare, hit


def keys_scheme(keys_of: Callable[[str], khmer.SearchKeys]) -> Scheme:
    return Scheme(keys_of, keys_of, lambda q, row, prefix: khmer.matches(q, row, prefix=prefix))


def _api_hit(query: str, stored: str, prefix: bool) -> bool:
    return any(all(term in stored for term in way) for way in search_ways(query, prefix=prefix))


API = Scheme(name_keys, lambda query: query, _api_hit)


# A key scheme turns a name (either script) into SearchKeys; `matches` then compares them.
def scheme(latin_of: Callable[[str], str], token_key: Callable[[str], str]) -> Callable[[str], khmer.SearchKeys]:
    def keys(name: str) -> khmer.SearchKeys:
        tokens = [token_key(t) for t in fold(latin_of(name)).split()]
        tokens = [t for t in tokens if t]
        return khmer.SearchKeys(khmer.khmer_key(name), " ".join(tokens), " ".join(sorted(tokens)))

    return keys


def _no_romanisation(name: str) -> str:
    return "" if khmer._KHMER.search(name) else name


SCHEMES: dict[str, Scheme] = {
    "folded Latin, no romanisation (before issue 15)": keys_scheme(scheme(_no_romanisation, lambda t: t)),
    "romanised, folded only": keys_scheme(scheme(khmer.romanise, lambda t: t)),
    "romanised + phonetic_key (the module)": keys_scheme(khmer.search_keys),
    "the API: stored name_keys, search_ways": API,
}
try:  # the pip package, if installed by hand (it needs pynini, ~165 MB): compared, not a dependency
    from functools import lru_cache

    from khmer_latin_name_transformer import to_latin

    to_latin = lru_cache(maxsize=None)(to_latin)  # about 0.1 s a name
    SCHEMES["khmer-latin-name-transformer + phonetic_key"] = keys_scheme(scheme(
        lambda n: to_latin(n) if khmer._KHMER.search(n) else n, khmer.phonetic_key))
except ImportError:
    pass


def evaluate(people: list[dict], how: Scheme, prefix: bool) -> dict:
    khmer_rows = [(i, how.index(p["khmer"])) for i, p in enumerate(people)]
    latin_rows = [(i, how.index(spelling)) for i, p in enumerate(people) for spelling in p["latin"]]
    keys_of = khmer.search_keys  # for showing misses
    results, misses = {}, []
    for direction, queries, rows in (
        ("Latin -> Khmer", [(i, s) for i, p in enumerate(people) for s in p["latin"]], khmer_rows),
        ("Khmer -> Latin", [(i, p["khmer"]) for i, p in enumerate(people)], latin_rows),
    ):
        found = retrieved = relevant_retrieved = 0
        for person, query in queries:
            q = how.prepare(query)
            hits = [i for i, row in rows if how.hit(q, row, prefix)]
            retrieved += len(hits)
            relevant_retrieved += sum(1 for i in hits if i == person)
            if person in hits:
                found += 1
            else:
                target = people[person]["khmer"] if direction.endswith("Khmer") else people[person]["latin"][0]
                misses.append((direction, query, keys_of(query).phonetic, target, keys_of(target).phonetic))
        results[direction] = (found / len(queries), relevant_retrieved / retrieved if retrieved else 0.0)
    # The given name alone (the last word of the first spelling), against the Khmer rows: recall only.
    found = 0
    for person, p in enumerate(people):
        q = how.prepare(p["latin"][0].split()[-1])
        found += how.hit(q, khmer_rows[person][1], prefix)
    results["given name -> Khmer (recall)"] = (found / len(people), None)
    return {"results": results, "misses": misses}


def timing(people: list[dict]) -> dict[str, float]:
    names = [p["khmer"] for p in people] + [s for p in people for s in p["latin"]]
    khmer_names = [p["khmer"] for p in people]
    per = {}
    for label, fn, sample in (
        ("normalise (Khmer)", khmer.normalise, khmer_names),
        ("romanise (Khmer)", khmer.romanise, khmer_names),
        ("search_keys (Khmer)", khmer.search_keys, khmer_names),
        ("search_keys (any)", khmer.search_keys, names),
        ("name_keys (any)", name_keys.__wrapped__, names),
    ):
        runs = 20
        seconds = timeit.timeit(lambda: [fn(n) for n in sample], number=runs)
        per[label] = seconds / (runs * len(sample)) * 1e6
    return per


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--misses", type=int, default=15, help="misses shown for the module's scheme")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    people = load(args.data)
    spellings = sum(len(p["latin"]) for p in people)
    print(f"{len(people)} people, {spellings} Latin spellings ({args.data.name})\n")
    print(f"{'scheme':48} {'mode':9} {'Latin->Khmer R/P':>18} {'Khmer->Latin R/P':>18} {'given->Khmer R':>15}")
    module_misses = []
    for name, how in SCHEMES.items():
        for prefix in (False, True):
            out = evaluate(people, how, prefix)
            r = out["results"]
            print(f"{name:48} {'prefix' if prefix else 'substring':9} "
                  f"{r['Latin -> Khmer'][0]:8.1%} {r['Latin -> Khmer'][1]:8.1%} "
                  f"{r['Khmer -> Latin'][0]:8.1%} {r['Khmer -> Latin'][1]:8.1%} "
                  f"{r['given name -> Khmer (recall)'][0]:14.1%}")
            if how is API and not prefix:
                module_misses = out["misses"]
    if module_misses and args.misses:
        print(f"\nmisses of the API's search (substring), {len(module_misses)} in all, the first {args.misses}:")
        for direction, query, qkey, target, tkey in module_misses[: args.misses]:
            print(f"  {direction}: {query!r} [{qkey}] did not find {target!r} [{tkey}]")
    if not args.no_timing:
        print("\nµs per name (this machine, shared):")
        for label, micros in timing(people).items():
            print(f"  {label:24} {micros:7.1f}")


if __name__ == "__main__":
    main()
