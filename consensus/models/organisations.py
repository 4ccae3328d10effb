"""Organisations: the participating government bodies. One organisation, one voice."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from consensus.models.base import Base, str_enum, utcnow


class OrganisationKind(enum.StrEnum):
    MUNICIPALITIES = "municipalities"
    PROVINCES = "provinces"
    WATER_BOARDS = "water_boards"
    NATIONAL_GOVERNMENT = "national_government"
    OTHER = "other"


class Organisation(Base):
    __tablename__ = "organisation"
    __table_args__ = (
        CheckConstraint("slug <> ''", name="slug_not_empty"),
        CheckConstraint("name <> ''", name="name_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str] = mapped_column(String(40))
    slug: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[OrganisationKind] = mapped_column(str_enum(OrganisationKind, 30))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<Organisation {self.slug}>"
