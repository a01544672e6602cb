import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, new_id, utcnow


class Office(Base):
    __tablename__ = "office"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    location_code: Mapped[str] = mapped_column(ForeignKey("location.code"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
