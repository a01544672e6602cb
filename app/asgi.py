"""The ASGI application for uvicorn (`app.asgi:app`), configured from GUICHET_* variables."""

from app.config import get_settings
from app.logs import configure_logging
from app.main import create_app

# Here, not only in `guichet serve`: each of several workers is a fresh (spawned) process that imports
# this module, and would otherwise log plain text, or nothing below WARNING.
configure_logging(get_settings().log_level)
app = create_app()
