import sys

# httpx imports its command-line client (with click, rich and pygments) whenever those happen to be
# installed, as they are here alongside typer; a serving worker never uses it, and it costs ~4 MiB and
# ~0.1 s at every start. httpx falls back to a stub when the import fails.
sys.modules.setdefault("httpx._main", None)
