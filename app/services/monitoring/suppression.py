"""Small cells that stay hidden whichever way they are asked for (docs/monitoring.md, "Small cells").

A question's cells are decided on the cross-tabulation of every dimension it names, whether it groups or
filters by it: `office=XA1` is the XA1 row of `group_by=office`, hidden or shown alike. Within that table a
person count from 1 to k-1 is hidden, and every line of cells (one dimension free, the others and the period
fixed) that would hold a lone hidden cell gets a second one, so that the line's total, another question,
minus the shown cells gives nothing away.

Periods of an additive count nest, and each grain is derived from one reference table, the month's:
- a quarter is the sum of its months, hidden when any of them is (so "quarter minus the shown months" is
  the sum of at least two hidden cells, or of none);
- a day is hidden when its month is, and the days of a month form a line like any other (the month is
  their total); a week is the sum of its days, hidden when any of them is.
Unique counts (persons per period) and overdue items (as of a date) are not sums over periods; a
difference of two of their periods is no cell's value, so each period is decided on its own."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date

from app.services.monitoring.rollups import period_start


@dataclass
class Cell:
    start: date
    key: tuple[str, ...]
    value: float | int | None
    components: tuple[int, ...] = ()  # counts a derived value (ratio, median) is computed from
    suppressed: bool = False


def small(n: float | int | None, k: int) -> bool:
    return n is not None and 0 < n < k


def hide_small_components(cells: Iterable[Cell], k: int) -> None:
    """Ratios and medians: hidden when a count they are computed from is small."""
    for cell in cells:
        cell.suppressed = any(small(n, k) for n in cell.components)


def protect(cells: list[Cell], k: int, *, within: tuple[str, ...] = (),
            hidden_already: Callable[[Cell], bool] | None = None) -> None:
    """Hide small cells, then complete every line that holds a lone hidden cell. Lines run along each
    dimension of the key (within a period), and along the periods inside each grain of `within` (with
    the key fixed). `hidden_already` hides cells whose coarser cell is hidden (a day in a hidden month)."""
    for cell in cells:
        cell.suppressed = small(cell.value, k) or (hidden_already is not None and hidden_already(cell))
    if k <= 1 or not cells:
        return
    width = len(cells[0].key)
    lines: dict[tuple, list[int]] = {}
    lines_of: list[list[tuple]] = [[] for _ in cells]
    for index, cell in enumerate(cells):
        mine = [("dim", free, cell.start, cell.key[:free] + cell.key[free + 1:]) for free in range(width)]
        mine += [("period", grain, period_start(cell.start, grain), cell.key) for grain in within]
        for line in mine:
            lines.setdefault(line, []).append(index)
            lines_of[index].append(line)
    hidden = {line: sum(cells[i].suppressed for i in members) for line, members in lines.items()}

    def alone_somewhere(i: int) -> bool:
        # A cell that is the only one of some line is that line's total, which another question shows:
        # hiding it as a complement would protect nothing, so such cells are the last choice.
        return any(len(lines[line]) == 1 for line in lines_of[i])

    waiting = [line for line, members in lines.items() if hidden[line] == 1 and len(members) > 1]
    position = 0
    while position < len(waiting):
        line = waiting[position]
        position += 1
        if hidden[line] != 1:
            continue
        visible = [i for i in lines[line] if not cells[i].suppressed]
        if not visible:
            continue
        chosen = min(visible, key=lambda i: (alone_somewhere(i), cells[i].value, cells[i].start, cells[i].key))
        cells[chosen].suppressed = True
        for other in lines_of[chosen]:
            hidden[other] += 1
            if hidden[other] == 1 and len(lines[other]) > 1:
                waiting.append(other)


def coarsen(cells: Iterable[Cell], grain: str) -> list[Cell]:
    """Sums of an additive count by a coarser period, each hidden when a cell it sums is hidden."""
    out: dict[tuple[date, tuple[str, ...]], Cell] = {}
    for cell in cells:
        start = period_start(cell.start, grain)
        total = out.get((start, cell.key))
        if total is None:
            total = out[(start, cell.key)] = Cell(start, cell.key, 0)
        total.value += cell.value
        total.suppressed = total.suppressed or cell.suppressed
    return sorted(out.values(), key=lambda c: (c.start, c.key))
