"""case management

Revision ID: 0004_cases
Revises: 0003_monitoring
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004_cases"
down_revision: str | Sequence[str] | None = "0003_monitoring"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "reference_counter",
        sa.Column("office_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["office_id"], ["office.id"], name=op.f("fk_reference_counter_office_id_office")),
        sa.PrimaryKeyConstraint("office_id", "kind", "year", name=op.f("pk_reference_counter")),
    )
    op.create_table(
        "case_file",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("office_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("summary", sa.String(length=500), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.Uuid(), nullable=False),
        sa.Column("assigned_to", sa.Uuid(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=40), nullable=True),
        sa.Column("outcome_note", sa.String(length=1000), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assigned_to"], ["user_account.id"], name=op.f("fk_case_file_assigned_to_user_account")),
        sa.ForeignKeyConstraint(["closed_by"], ["user_account.id"], name=op.f("fk_case_file_closed_by_user_account")),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_case_file_household_id_household")),
        sa.ForeignKeyConstraint(["office_id"], ["office.id"], name=op.f("fk_case_file_office_id_office")),
        sa.ForeignKeyConstraint(["opened_by"], ["user_account.id"], name=op.f("fk_case_file_opened_by_user_account")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_case_file_person_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_file")),
    )
    op.create_index("ix_case_file_assigned", "case_file", ["assigned_to", "status"], unique=False)
    op.create_index("ix_case_file_household", "case_file", ["household_id", "status"], unique=False)
    op.create_index("ix_case_file_office_status_opened", "case_file", ["office_id", "status", "opened_at"], unique=False)
    op.create_table(
        "application",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("office_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("scheme_code", sa.String(length=40), nullable=False),
        sa.Column("scheme_name", sa.String(length=200), nullable=False),
        sa.Column("scheme_kind", sa.String(length=20), nullable=False),
        sa.Column("agency", sa.String(length=200), nullable=False),
        sa.Column("route", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("submitted_by", sa.Uuid(), nullable=False),
        sa.Column("service_level_days", sa.Integer(), nullable=False),
        sa.Column("decision_due_date", sa.Date(), nullable=False),
        sa.Column("screening_id", sa.Uuid(), nullable=True),
        sa.Column("screening_outcome", sa.String(length=20), nullable=True),
        sa.Column("against_screening", sa.Boolean(), nullable=False),
        sa.Column("screening_override_reason", sa.String(length=1000), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.Column("decided_by_kind", sa.String(length=12), nullable=True),
        sa.Column("days_to_decision", sa.Integer(), nullable=True),
        sa.Column("within_service_level", sa.Boolean(), nullable=True),
        sa.Column("reason_code", sa.String(length=40), nullable=True),
        sa.Column("reason_text", sa.String(length=2000), nullable=True),
        sa.Column("benefit", JSON, nullable=True),
        sa.Column("submission_state", sa.String(length=10), nullable=True),
        sa.Column("submission_attempts", sa.Integer(), nullable=False),
        sa.Column("submission_error", sa.String(length=500), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("partner_reference", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name=op.f("fk_application_case_id_case_file")),
        sa.ForeignKeyConstraint(["decided_by"], ["user_account.id"], name=op.f("fk_application_decided_by_user_account")),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_application_household_id_household")),
        sa.ForeignKeyConstraint(["office_id"], ["office.id"], name=op.f("fk_application_office_id_office")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_application_person_id_person")),
        sa.ForeignKeyConstraint(["screening_id"], ["screening.id"], name=op.f("fk_application_screening_id_screening")),
        sa.ForeignKeyConstraint(["submitted_by"], ["user_account.id"], name=op.f("fk_application_submitted_by_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_application")),
        sa.UniqueConstraint("reference", name=op.f("uq_application_reference")),
    )
    op.create_index("ix_application_case", "application", ["case_id"], unique=False)
    op.create_index("ix_application_office_status_due", "application", ["office_id", "status", "decision_due_date"], unique=False)
    op.create_index("ix_application_scheme_status", "application", ["scheme_code", "status"], unique=False)
    op.create_index("ix_application_subject", "application", ["household_id", "person_id", "scheme_code"], unique=False)
    op.create_table(
        "case_event",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_username", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("subject_type", sa.String(length=20), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name=op.f("fk_case_event_case_id_case_file")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_event")),
    )
    op.create_index("ix_case_event_case_at", "case_event", ["case_id", "at", "id"], unique=False)
    op.create_table(
        "case_note",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("office_id", sa.Uuid(), nullable=False),
        sa.Column("author_id", sa.Uuid(), nullable=False),
        sa.Column("text", sa.String(length=4000), nullable=False),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["author_id"], ["user_account.id"], name=op.f("fk_case_note_author_id_user_account")),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name=op.f("fk_case_note_case_id_case_file")),
        sa.ForeignKeyConstraint(["office_id"], ["office.id"], name=op.f("fk_case_note_office_id_office")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_note")),
    )
    op.create_index("ix_case_note_case_created", "case_note", ["case_id", "created_at"], unique=False)
    op.create_table(
        "follow_up",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("office_id", sa.Uuid(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("action", sa.String(length=500), nullable=False),
        sa.Column("assigned_to", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_by", sa.Uuid(), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assigned_to"], ["user_account.id"], name=op.f("fk_follow_up_assigned_to_user_account")),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name=op.f("fk_follow_up_case_id_case_file")),
        sa.ForeignKeyConstraint(["completed_by"], ["user_account.id"], name=op.f("fk_follow_up_completed_by_user_account")),
        sa.ForeignKeyConstraint(["created_by"], ["user_account.id"], name=op.f("fk_follow_up_created_by_user_account")),
        sa.ForeignKeyConstraint(["office_id"], ["office.id"], name=op.f("fk_follow_up_office_id_office")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_up")),
    )
    op.create_index("ix_follow_up_case", "follow_up", ["case_id"], unique=False)
    op.create_index("ix_follow_up_office_status_due", "follow_up", ["office_id", "status", "due_date"], unique=False)
    op.create_table(
        "referral",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=False),
        sa.Column("office_id", sa.Uuid(), nullable=False),
        sa.Column("household_id", sa.Uuid(), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("agency", sa.String(length=40), nullable=False),
        sa.Column("service", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.Uuid(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome_note", sa.String(length=1000), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name=op.f("fk_referral_case_id_case_file")),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_referral_household_id_household")),
        sa.ForeignKeyConstraint(["issued_by"], ["user_account.id"], name=op.f("fk_referral_issued_by_user_account")),
        sa.ForeignKeyConstraint(["office_id"], ["office.id"], name=op.f("fk_referral_office_id_office")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_referral_person_id_person")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral")),
        sa.UniqueConstraint("reference", name=op.f("uq_referral_reference")),
    )
    op.create_index("ix_referral_agency_status", "referral", ["agency", "status", "due_date"], unique=False)
    op.create_index("ix_referral_case", "referral", ["case_id"], unique=False)
    op.create_index("ix_referral_office_status_due", "referral", ["office_id", "status", "due_date"], unique=False)
    op.create_table(
        "grievance",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=40), nullable=False),
        sa.Column("office_id", sa.Uuid(), nullable=False),
        sa.Column("case_id", sa.Uuid(), nullable=True),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        sa.Column("complainant_kind", sa.String(length=10), nullable=False),
        sa.Column("person_id", sa.Uuid(), nullable=True),
        sa.Column("household_id", sa.Uuid(), nullable=True),
        sa.Column("complainant_name", sa.String(length=200), nullable=True),
        sa.Column("complainant_contact", sa.String(length=200), nullable=True),
        sa.Column("description", sa.String(length=4000), nullable=False),
        sa.Column("application_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("sla_due_date", sa.Date(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_by", sa.Uuid(), nullable=False),
        sa.Column("resolution", sa.String(length=2000), nullable=True),
        sa.Column("upheld", sa.Boolean(), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["application_id"], ["application.id"], name=op.f("fk_grievance_application_id_application")),
        sa.ForeignKeyConstraint(["case_id"], ["case_file.id"], name=op.f("fk_grievance_case_id_case_file")),
        sa.ForeignKeyConstraint(["household_id"], ["household.id"], name=op.f("fk_grievance_household_id_household")),
        sa.ForeignKeyConstraint(["office_id"], ["office.id"], name=op.f("fk_grievance_office_id_office")),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"], name=op.f("fk_grievance_person_id_person")),
        sa.ForeignKeyConstraint(["received_by"], ["user_account.id"], name=op.f("fk_grievance_received_by_user_account")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_grievance")),
        sa.UniqueConstraint("reference", name=op.f("uq_grievance_reference")),
    )
    op.create_index("ix_grievance_application", "grievance", ["application_id"], unique=False)
    op.create_index("ix_grievance_case", "grievance", ["case_id"], unique=False)
    op.create_index("ix_grievance_office_status_due", "grievance", ["office_id", "status", "sla_due_date"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_grievance_office_status_due", table_name="grievance")
    op.drop_index("ix_grievance_case", table_name="grievance")
    op.drop_index("ix_grievance_application", table_name="grievance")
    op.drop_table("grievance")
    op.drop_index("ix_referral_office_status_due", table_name="referral")
    op.drop_index("ix_referral_case", table_name="referral")
    op.drop_index("ix_referral_agency_status", table_name="referral")
    op.drop_table("referral")
    op.drop_index("ix_follow_up_office_status_due", table_name="follow_up")
    op.drop_index("ix_follow_up_case", table_name="follow_up")
    op.drop_table("follow_up")
    op.drop_index("ix_case_note_case_created", table_name="case_note")
    op.drop_table("case_note")
    op.drop_index("ix_case_event_case_at", table_name="case_event")
    op.drop_table("case_event")
    op.drop_index("ix_application_subject", table_name="application")
    op.drop_index("ix_application_scheme_status", table_name="application")
    op.drop_index("ix_application_office_status_due", table_name="application")
    op.drop_index("ix_application_case", table_name="application")
    op.drop_table("application")
    op.drop_index("ix_case_file_office_status_opened", table_name="case_file")
    op.drop_index("ix_case_file_household", table_name="case_file")
    op.drop_index("ix_case_file_assigned", table_name="case_file")
    op.drop_table("case_file")
    op.drop_table("reference_counter")
