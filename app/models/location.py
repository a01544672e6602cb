from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base

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
