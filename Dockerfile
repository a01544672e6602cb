# One image for every role of an instance (office, central, standalone; GUICHET_ROLE).
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
# Dependencies first, in their own layer, so a code change does not reinstall them; at the versions of
# requirements.lock (`make lock`), the runtime ones only.
COPY pyproject.toml README.md LICENSE requirements.lock ./
RUN mkdir app && touch app/__init__.py \
    && python -m venv /venv \
    && /venv/bin/pip install -c requirements.lock . \
    && /venv/bin/pip uninstall -y guichet
COPY app ./app
COPY migrations ./migrations
COPY alembic.ini ./
# Editable, so that the package finds alembic.ini and migrations/ beside it in /app.
# Bytecode written here: the image runs with PYTHONDONTWRITEBYTECODE and cannot write to /app, so each
# worker would otherwise compile the app's modules at every start (bench/footprint.py). checked-hash:
# valid whatever the copied files' times, and still never stale.
RUN /venv/bin/pip install --no-deps -e . \
    && /venv/bin/pip check \
    && /venv/bin/python -m compileall -q --invalidation-mode checked-hash app migrations

FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    GUICHET_ENV=production GUICHET_VAR_DIR=/app/var
RUN useradd --create-home --uid 10001 guichet
WORKDIR /app
COPY --from=build /venv /venv
COPY --from=build /app /app
RUN mkdir -p /app/var && chown guichet:guichet /app/var
USER guichet
EXPOSE 8000
# /readyz: the database answers and the schema is at the code's migration head.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD python -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status == 200 else 1)"
# Migrate, then serve. GUICHET_DATABASE_URL, GUICHET_SECRET_KEY and GUICHET_PSEUDONYM_KEY must be set.
CMD ["sh", "-c", "guichet db upgrade && exec guichet serve --host 0.0.0.0 --port 8000 --workers ${GUICHET_WORKERS:-2}"]
