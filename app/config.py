"""Settings: one pydantic-settings class, every variable prefixed GUICHET_."""

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, StringConstraints, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.vocabulary import GrievanceCategory


class Environment(StrEnum):
    development = "development"
    production = "production"


class InstanceRole(StrEnum):
    office = "office"
    central = "central"
    standalone = "standalone"


class ReferralAgency(BaseModel):
    """An agency or service a case can be referred to. A partner account acts for the agency when its
    scheme_code is the agency's code (any case) or one of `partners` (docs/case-management.md)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    services: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{1,40}$")], Annotated[str, StringConstraints(max_length=200)]]
    partners: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")]] = []


# Days to answer a grievance, per category, at each level (an escalation starts the count again).
DEFAULT_GRIEVANCE_SLA_DAYS = {
    GrievanceCategory.exclusion_error: 30,
    GrievanceCategory.payment: 15,
    GrievanceCategory.staff_conduct: 30,
    GrievanceCategory.data_correction: 15,
    GrievanceCategory.appeal: 30,
    GrievanceCategory.other: 30,
}

DEFAULT_REFERRAL_AGENCIES = {
    "nea": ReferralAgency(name="National Employment Agency (MLVT)", partners=["KH-NEA-JOB"], services={
        "job_counselling": "Job counselling", "vocational_training": "Vocational training", "job_placement": "Job placement"}),
    "health_centre": ReferralAgency(name="Health centre (MoH)", services={
        "consultation": "Consultation", "antenatal_care": "Antenatal care", "vaccination": "Vaccination"}),
    "mosvy": ReferralAgency(name="Social welfare office (MoSVY)", services={
        "disability_identification": "Disability identification", "social_work": "Social work support"}),
    "nssf": ReferralAgency(name="National Social Security Fund", partners=["KH-NSSF-HC", "KH-NSSF-PEN"], services={
        "registration": "Registration", "benefit_claim": "Benefit claim"}),
    "idpoor": ReferralAgency(name="Commune IDPoor on-demand assessment (MoP)", services={
        "assessment": "On-demand IDPoor assessment"}),
    "school": ReferralAgency(name="School (MoEYS)", services={"enrolment": "Enrolment", "scholarship": "Scholarship"}),
}


class DciRegistry(BaseModel):
    """An external registry Guichet asks as a DCI client (docs/dci.md): its search endpoints, its token
    endpoint and our credentials there, its signing keys, and how its persons are identified."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=500)]  # base: .../registry
    token_url: Annotated[str, StringConstraints(pattern=r"^https?://", max_length=500)] | None = None
    client_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    client_secret: SecretStr | None = None
    receiver_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    jwks: dict | None = None  # its public keys: its answers must be signed by one of them
    mode: Literal["sync", "async"] = "sync"
    id_type: Annotated[str, StringConstraints(max_length=40)] = "NID"
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GUICHET_", env_file=".env", extra="ignore")

    env: Environment = Environment.development
    role: InstanceRole = InstanceRole.standalone
    var_dir: Path = Path("var")
    database_url: str = ""
    secret_key: SecretStr | None = None
    # Keyed pseudonyms for monitoring events; kept apart from the signing key so that rotating the
    # signing key does not break unique-person counts at central.
    pseudonym_key: SecretStr | None = None
    token_lifetime_minutes: int = Field(default=30, ge=1, le=24 * 60)
    jwt_issuer: str = "guichet"
    jwt_audience: str = "guichet-api"
    # None: 10 on PostgreSQL, 3 on SQLite (`pool_size`).
    db_pool_size: int | None = Field(default=None, ge=1, le=200)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_statement_timeout_seconds: float = Field(default=15.0, gt=0)
    # A request's whole body must arrive within this before the application sees the request (408 after).
    body_read_timeout_seconds: float = Field(default=60.0, gt=0, le=3600)
    # Sign-in throttling (docs/sessions.md): failures per account and source address, then per account.
    login_max_failures: int = Field(default=5, ge=1, le=100,
                                    description="Failures per account and address before each attempt must wait.")
    login_max_delay_minutes: int = Field(default=15, ge=1, le=24 * 60,
                                         description="The longest wait per account and address.")
    login_account_max_failures: int = Field(default=20, ge=1, le=1000,
                                            description="A person's failures from all addresses before the account-wide wait.")
    login_account_delay_seconds: int = Field(default=60, ge=1, le=3600,
                                             description="The account-wide wait: the most a stranger can slow a person down.")
    # Sessions (docs/sessions.md): a refresh token ends after this long unused, and a sign-in after this long at all.
    refresh_idle_minutes: int = Field(default=60, ge=5, le=7 * 24 * 60)
    refresh_lifetime_hours: int = Field(default=12, ge=1, le=30 * 24)
    bench_endpoints: bool = False
    log_level: str = "INFO"
    # Operations (docs/operations.md): /metrics is open unless a token is set; keep it off the public proxy.
    metrics_enabled: bool = True
    metrics_token: SecretStr | None = Field(default=None, description="When set, /metrics needs 'Authorization: Bearer <token>'.")
    timezone: str = Field(default="Asia/Phnom_Penh", description="Where 'today' and deadlines are judged.")
    # Languages (docs/i18n.md): the answer's language when Accept-Language names none of km, en, fr.
    default_language: Literal["km", "en", "fr"] = "km"
    # Office-to-central monitoring (docs/monitoring.md).
    central_url: str | None = Field(default=None, description="Base URL of the central Guichet the relay posts to.")
    relay_inprocess: bool | None = Field(default=None, description="Run the relay inside the server; default: standalone only.")
    relay_client_id: str | None = None
    relay_client_secret: SecretStr | None = None
    relay_batch_size: int = Field(default=1000, ge=1, le=1000)
    relay_lease_seconds: float = Field(default=60.0, ge=1, le=3600)
    relay_poll_seconds: float = Field(default=1.0, gt=0, le=300)
    relay_backoff_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    # An event central failed on alone waits up to relay_backoff_max_seconds; while central cannot be
    # reached at all, the relay probes it at least every relay_probe_max_seconds (docs/monitoring.md).
    relay_backoff_max_seconds: float = Field(default=300.0, gt=0, le=86400)
    relay_probe_max_seconds: float = Field(default=10.0, gt=0, le=60)
    small_cell_k: int = Field(default=5, ge=1, le=100, description="Person counts below k are suppressed.")
    # DHIS2 (docs/monitoring.md, "DHIS2"): the mapping the ministry edits, and where push-dhis2 posts;
    # a personal access token, or a user name and password.
    dhis2_mapping: str | None = Field(default=None, description="Mapping file; default app/data/dhis2_mapping.yaml.")
    dhis2_url: str | None = None
    dhis2_token: SecretStr | None = None
    dhis2_username: str | None = None
    dhis2_password: SecretStr | None = None
    # Eligibility schemes: extra scheme files or directories (os.pathsep-separated), added to the catalogue
    # shipped in app/schemes/catalogue/; a file there replaces a catalogue scheme of the same code.
    schemes_path: str | None = None
    # Partner schemes reached over HTTP: bearer token and (optionally) endpoint URL per scheme code, as
    # JSON, e.g. GUICHET_PARTNER_TOKENS='{"KH-NEA-MATCH": "..."}'.
    partner_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    partner_urls: dict[str, str] = Field(default_factory=dict)
    # Case management (docs/case-management.md).
    default_service_level_days: int = Field(default=30, ge=1, le=3650,
                                            description="Days to decide an application when its scheme does not say.")
    grievance_sla_days: dict[GrievanceCategory, Annotated[int, Field(ge=1, le=3650)]] = Field(
        default_factory=lambda: dict(DEFAULT_GRIEVANCE_SLA_DAYS),
        description="Days to answer a grievance per category, e.g. GUICHET_GRIEVANCE_SLA_DAYS='{\"payment\": 10}'.")
    grievance_max_level: int = Field(default=3, ge=1, le=5, description="Office (1), then each escalation one level up.")
    appeal_window_days: int = Field(default=90, ge=1, le=3650, description="Days after a decision to appeal against it.")
    referral_expiry_days: int = Field(default=30, ge=0, le=3650,
                                      description="An open referral expires this many days after its due date.")
    referral_agencies: dict[Annotated[str, StringConstraints(pattern=r"^[a-z0-9_.-]{1,40}$")], ReferralAgency] = Field(
        default_factory=lambda: dict(DEFAULT_REFERRAL_AGENCIES))

    # DCI registry APIs (docs/dci.md): Guichet as a Social Registry for partner clients, and as a client
    # of external registries.
    dci_sender_id: str = Field(default="guichet", max_length=200, description="Our id in DCI headers (sender/receiver).")
    dci_signing_key: SecretStr | None = Field(default=None, description="PEM private key signing our DCI messages.")
    dci_signing_algorithm: Literal["ES256", "RS256"] = "ES256"
    dci_token_minutes: int = Field(default=10, ge=1, le=60)
    dci_public_url: str | None = Field(default=None, description="Our base URL as partners reach it (callbacks).")
    dci_worker_inprocess: bool | None = Field(default=None, description="Deliver callbacks in the server; default: on.")
    dci_delivery_max_attempts: int = Field(default=8, ge=1, le=100)
    dci_backoff_base_seconds: float = Field(default=1.0, ge=0, le=3600, description="First retry delay; doubles each time.")
    dci_registries: dict[Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,40}$")], DciRegistry] = Field(
        default_factory=dict)
    dci_lookup_registry: str | None = Field(default=None, description="The registry asked at registration (a key of DCI_REGISTRIES).")

    @field_validator("grievance_sla_days", mode="after")
    @classmethod
    def _every_category_has_a_deadline(cls, days: dict) -> dict:
        return DEFAULT_GRIEVANCE_SLA_DAYS | days

    @model_validator(mode="after")
    def _fill_development_defaults(self) -> "Settings":
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{self.var_dir / 'guichet.db'}"
        if self.env is Environment.production:
            if self.secret_key is None or len(self.secret_key.get_secret_value()) < 32:
                raise ValueError(
                    "GUICHET_SECRET_KEY must be set (at least 32 characters) when GUICHET_ENV=production"
                )
            if self.pseudonym_key is None:
                raise ValueError("GUICHET_PSEUDONYM_KEY must be set when GUICHET_ENV=production")
        else:
            if self.secret_key is None:
                self.secret_key = SecretStr(key_file(self.var_dir / "secret_key"))
            if self.pseudonym_key is None:
                self.pseudonym_key = SecretStr(key_file(self.var_dir / "pseudonym_key"))
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def pool_size(self) -> int:
        """Connections a worker keeps. SQLite runs one transaction at a time (every one begins as the writer,
        app/db.py): one connection works while the next waits to begin (a third serves `guichet rescreen`'s
        lister beside its two jobs), and each further one would only wait, in SQLite's busy loop, while
        costing the worker ~1.2 MiB (its thread, statement and schema caches; bench/footprint.py)."""
        if self.db_pool_size is not None:
            return self.db_pool_size
        return 3 if self.is_sqlite else 10

    @property
    def serves_office(self) -> bool:
        return self.role is not InstanceRole.central

    @property
    def serves_central(self) -> bool:
        return self.role is not InstanceRole.office

    @property
    def relay_in_process(self) -> bool:
        return self.relay_inprocess if self.relay_inprocess is not None else self.role is InstanceRole.standalone


def key_file(path: Path, make=lambda: secrets.token_urlsafe(48)) -> str:
    """A development key generated once into var/ and kept, so tokens survive restarts."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = make()
    path.touch(mode=0o600)
    path.write_text(key)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
