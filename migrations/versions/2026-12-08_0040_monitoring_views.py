"""Monitoring for BI tools: views over the monthly rollups in schema monitoring_bi, small cells masked,
and the read-only role guichet_bi that may read them and nothing else (PostgreSQL only; docs/monitoring.md)

Revision ID: 0040_monitoring_views
Revises: 0030_names_two_scripts
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0040_monitoring_views'
down_revision: str | Sequence[str] | None = '0030_names_two_scripts'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEMA = "monitoring_bi"
ROLE = "guichet_bi"
K = 5  # the small-cell threshold of the views: a counter from 1 to K-1 reads as NULL, suppressed

# view -> (rollup table, the dimension columns it shows)
VIEWS = {
    "monthly_province_sex": ("monitoring_rollup_sex", ("province", "scheme", "detail", "sex")),
    "monthly_province_person": ("monitoring_rollup_province",
                                ("province", "scheme", "detail", "sex", "age_band", "disability")),
    "monthly_province_household": ("monitoring_rollup_household",
                                   ("province", "scheme", "detail", "area_type", "idpoor_level", "female_headed")),
    "monthly_office": ("monitoring_rollup_office", ("office_code", "province", "district", "scheme", "detail", "sex")),
}


def upgrade() -> None:
    # SQLite has neither schemas nor roles; a BI tool there reads the file itself.
    if op.get_bind().dialect.name != "postgresql":
        return
    # Roles belong to the cluster, not the database: created once, kept by the downgrade.
    op.execute(f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') "
               f"THEN CREATE ROLE {ROLE} NOLOGIN; END IF; END $$")
    op.execute(f"CREATE SCHEMA {SCHEMA}")
    for view, (table, dims) in VIEWS.items():
        columns = ", ".join(dims)
        op.execute(
            f"CREATE VIEW {SCHEMA}.{view} AS SELECT metric, grain, period_start, {columns}, "
            f"CASE WHEN value < {K} THEN NULL ELSE value END AS value, value < {K} AS suppressed "
            f"FROM public.{table} WHERE value > 0")
    op.execute(
        f"CREATE VIEW {SCHEMA}.offices AS SELECT o.code AS office_code, o.name, o.location_code, "
        "s.first_sync_at, s.last_sync_at, s.last_event_at, s.events_received, s.rejected_received "
        "FROM public.office AS o LEFT JOIN public.monitoring_office_sync AS s ON s.office_code = o.code")
    op.execute(f"GRANT USAGE ON SCHEMA {SCHEMA} TO {ROLE}")
    op.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {SCHEMA} TO {ROLE}")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {SCHEMA} FROM {ROLE}")
    op.execute(f"REVOKE ALL ON SCHEMA {SCHEMA} FROM {ROLE}")
    op.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
