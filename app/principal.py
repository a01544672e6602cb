"""Who is acting: the caller of a request, as the services see them. No web framework here, so that
`app/services/*` can take a `Principal` without importing FastAPI-side code (`app.deps` builds one from
the request's token)."""

import uuid
from dataclasses import dataclass

from app.vocabulary import Role


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller, as the database knows them now (not as the token remembers)."""

    id: uuid.UUID
    username: str
    role: Role
    office_id: uuid.UUID | None
    office_code: str | None
    scheme_code: str | None

    @property
    def office_scope(self) -> uuid.UUID | None:
        """The only office whose records this caller may touch; None means every office (admin).
        `app.services.scoping` is the one place that turns it into a query."""
        return None if self.role is Role.admin else self.office_id
