import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy import orm
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Versioned, new_id, utcnow



class Household(Versioned, Base):
    __tablename__ = "household"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    office_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("office.id"))
    village_code: Mapped[str] = mapped_column(ForeignKey("location.code"))
    address: Mapped[str | None] = mapped_column(String(300))
    area_type: Mapped[str] = mapped_column(String(5))
    idpoor_level: Mapped[int | None] = mapped_column()
    idpoor_card_number: Mapped[str | None] = mapped_column(String(40))
    idpoor_valid_until: Mapped[date | None] = mapped_column()
    registered_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))

    members: Mapped[list["Person"]] = orm.relationship(
        back_populates="household", order_by="Person.created_at, Person.id", lazy="raise"
    )

    __table_args__ = (
        Index("ix_household_office_created", "office_id", "created_at"),
        # Location searches (households of a village or a commune, of an office) from the index alone.
        Index("ix_household_village_office", "village_code", "office_id", "id"),
        # Is this IDPoor card already on another household? (asked at every registration that gives one)
        Index("ix_household_idpoor_card_number", "idpoor_card_number"),
    )


class Person(Versioned, Base):
    __tablename__ = "person"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("household.id"), index=True)
    office_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("office.id"))
    # The household's village, carried by each member (kept equal by the household services) so that
    # duplicate matching finds a commune's namesakes in one index range.
    village_code: Mapped[str] = mapped_column(String(8))
    # The name as registered, in Khmer script (or in Latin when that is the only script the person's name
    # is known in), Khmer normalised to one character order (app/text/khmer.py).
    given_name: Mapped[str] = mapped_column(String(100))
    family_name: Mapped[str] = mapped_column(String(100))
    # The Latin-script spelling the person uses (ID card, passport), when known.
    given_name_latin: Mapped[str | None] = mapped_column(String(100))
    family_name_latin: Mapped[str | None] = mapped_column(String(100))
    # Lower-case, accent-free "family given" for case- and accent-insensitive substring search.
    search_name: Mapped[str] = mapped_column(String(210))
    # What a name search looks in: Khmer, phonetic and folded keys of both scripts (names.name_keys).
    name_keys: Mapped[str] = mapped_column(String(800))
    # Transliteration-tolerant, cross-script keys ("Chanthou"/"Chanthu"/"ចន្ធូ" -> "canto"): duplicate
    # matching at intake looks only at people sharing the key of either name.
    family_key: Mapped[str] = mapped_column(String(100))
    given_key: Mapped[str] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(String(6))
    birth_date: Mapped[date | None] = mapped_column()
    birth_year: Mapped[int] = mapped_column()
    birth_date_approximate: Mapped[bool] = mapped_column(default=False)
    national_id: Mapped[str | None] = mapped_column(String(30), unique=True)
    phone: Mapped[str | None] = mapped_column(String(20))
    relationship: Mapped[str] = mapped_column(String(16))
    disability_seeing: Mapped[str] = mapped_column(String(8), default="none")
    disability_hearing: Mapped[str] = mapped_column(String(8), default="none")
    disability_walking: Mapped[str] = mapped_column(String(8), default="none")
    disability_remembering: Mapped[str] = mapped_column(String(8), default="none")
    disability_self_care: Mapped[str] = mapped_column(String(8), default="none")
    disability_communicating: Mapped[str] = mapped_column(String(8), default="none")
    pregnant: Mapped[bool] = mapped_column(default=False)
    expected_delivery_date: Mapped[date | None] = mapped_column()
    employment_status: Mapped[str | None] = mapped_column(String(16))
    monthly_income: Mapped[int | None] = mapped_column(BigInteger)
    school_enrolled: Mapped[bool | None] = mapped_column()
    school_attendance_percent: Mapped[int | None] = mapped_column()
    nssf_member: Mapped[bool | None] = mapped_column()
    nssf_contribution_months: Mapped[int | None] = mapped_column()
    attributes: Mapped[dict] = mapped_column(default=dict)
    registered_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))

    household: Mapped[Household] = orm.relationship(back_populates="members", lazy="raise")

    __table_args__ = (
        Index("ix_person_office_search_name", "office_id", "search_name"),
        # Substring search in either script ("chanth", "Sophia" or "សុភា") on PostgreSQL; a plain index on SQLite.
        Index("ix_person_name_keys_trgm", "name_keys", postgresql_using="gin",
              postgresql_ops={"name_keys": "gin_trgm_ops"}),
        # Duplicate-matching blocks: who shares a name key, lives in the commune (a range of village
        # codes), is of that sex and was born in those years (app/services/matching.py).
        Index("ix_person_family_key_block", "family_key", "village_code", "sex", "birth_year"),
        Index("ix_person_given_key_block", "given_key", "village_code", "sex", "birth_year"),
        # The console's one search box finds a household by any member's phone number.
        Index("ix_person_office_phone", "office_id", "phone"),
    )


class ConsentRecord(Base):
    """Append-only: a change of consent adds a row; the newest row is the consent in force."""

    __tablename__ = "consent_record"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    household_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("household.id"))
    purposes: Mapped[list] = mapped_column()
    given_by: Mapped[str] = mapped_column(String(200))
    method: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(String(500))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("user_account.id"))

    __table_args__ = (Index("ix_consent_record_household_recorded", "household_id", "recorded_at"),)
