"""The ASGI application for uvicorn (`app.asgi:app`), configured from GUICHET_* variables."""

import gc

# Importing the stack and the app makes some 150,000 long-lived objects and almost no garbage (under a
# thousand unreachable objects): the collector's passes over them cost a sixth of the start-up's CPU
# time (1.84 → 1.52 s, median of 8, to import and build the app here). Frozen afterwards, they are
# also kept out of every later full collection.
gc.disable()
try:
    from app.config import get_settings
    from app.logs import configure_logging
    from app.main import create_app

    # Here, not only in `guichet serve`: each of several workers is a fresh (spawned) process that
    # imports this module, and would otherwise log plain text, or nothing below WARNING.
    configure_logging(get_settings().log_level)
    app = create_app()
finally:
    gc.freeze()
    gc.enable()
