"""Settings: one pydantic-settings class, every variable prefixed GUICHET_."""

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Environment(StrEnum):
    development = "development"
    production = "production"


class InstanceRole(StrEnum):
    office = "office"
    central = "central"
    standalone = "standalone"


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
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0)
    db_statement_timeout_seconds: float = Field(default=15.0, gt=0)
    login_max_failures: int = Field(default=5, ge=1)
    login_lock_minutes: int = Field(default=15, ge=1)
    bench_endpoints: bool = False
    log_level: str = "INFO"
    timezone: str = Field(default="Asia/Phnom_Penh", description="Where 'today' and deadlines are judged.")
    # Office-to-central monitoring (docs/monitoring.md).
    central_url: str | None = Field(default=None, description="Base URL of the central Guichet the relay posts to.")
    relay_inprocess: bool | None = Field(default=None, description="Run the relay inside the server; default: standalone only.")
    relay_client_id: str | None = None
    relay_client_secret: SecretStr | None = None
    relay_batch_size: int = Field(default=1000, ge=1, le=1000)
    relay_lease_seconds: float = Field(default=60.0, ge=1, le=3600)
    relay_poll_seconds: float = Field(default=1.0, gt=0, le=300)
    relay_backoff_base_seconds: float = Field(default=1.0, gt=0, le=3600)
    relay_backoff_max_seconds: float = Field(default=300.0, gt=0, le=86400)
    small_cell_k: int = Field(default=5, ge=1, le=100, description="Person counts below k are suppressed.")
    # Eligibility schemes: extra scheme files or directories (os.pathsep-separated), added to the catalogue
    # shipped in app/schemes/catalogue/; a file there replaces a catalogue scheme of the same code.
    schemes_path: str | None = None
    # Partner schemes reached over HTTP: bearer token and (optionally) endpoint URL per scheme code, as
    # JSON, e.g. GUICHET_PARTNER_TOKENS='{"KH-NEA-MATCH": "..."}'.
    partner_tokens: dict[str, SecretStr] = Field(default_factory=dict)
    partner_urls: dict[str, str] = Field(default_factory=dict)

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
                self.secret_key = SecretStr(_key_file(self.var_dir / "secret_key"))
            if self.pseudonym_key is None:
                self.pseudonym_key = SecretStr(_key_file(self.var_dir / "pseudonym_key"))
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def serves_office(self) -> bool:
        return self.role is not InstanceRole.central

    @property
    def serves_central(self) -> bool:
        return self.role is not InstanceRole.office

    @property
    def relay_in_process(self) -> bool:
        return self.relay_inprocess if self.relay_inprocess is not None else self.role is InstanceRole.standalone


def _key_file(path: Path) -> str:
    """A development key generated once into var/ and kept, so tokens survive restarts."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(key)
    return key


@lru_cache
def get_settings() -> Settings:
    return Settings()
