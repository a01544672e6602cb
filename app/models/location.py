from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base
from app.services.names import name_keys


def _name_keys(context) -> str:
    # Computed from the row's names on every insert, by whatever inserts it (an import, the national
    # gazetteer, a test's world).
    row = context.get_current_parameters()
    return name_keys(row["name"], row.get("name_km"), phonetic=False)

# Cambodian geocodes nest by prefix: province 2 digits, district 4, commune 6, village 8.
LEVEL_CODE_LENGTH = {"province": 2, "district": 4, "commune": 6, "village": 8}


class Location(Base):
    __tablename__ = "location"

    code: Mapped[str] = mapped_column(String(8), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    name_km: Mapped[str | None] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(10))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("location.code"), index=True)
    # Where the row came from ("national" for the shipped national gazetteer, else the imported file's name).
    source: Mapped[str] = mapped_column(String(80))
    # What a search by name looks in: both names' Khmer, phonetic and folded keys (names.name_keys).
    name_keys: Mapped[str] = mapped_column(String(800), default=_name_keys)

    __table_args__ = (
        Index("ix_location_name_keys_trgm", "name_keys", postgresql_using="gin",
              postgresql_ops={"name_keys": "gin_trgm_ops"}),
    )
