"""The ASGI application for uvicorn (`app.asgi:app`), configured from GUICHET_* variables."""

from app.main import create_app

app = create_app()
