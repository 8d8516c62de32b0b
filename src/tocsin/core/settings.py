"""One typed Settings object, read from environment variables ``TOCSIN_*``."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Deployment settings.

    Every field is read from ``TOCSIN_<FIELD>`` (case-insensitive), e.g.
    ``TOCSIN_DATABASE_URL``. Provider URLs left empty mean "no live provider
    for that channel": live campaigns on it are refused, simulation campaigns
    always use the built-in simulators.
    """

    model_config = SettingsConfigDict(env_prefix="TOCSIN_", extra="ignore")

    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty = SQLite in ./var/tocsin.db"
    )
    var_dir: Path = Field(default=Path("var"), description="Embedded-storage directory")

    # Live providers (F21, F23). Space-separated smpp:// URLs; one smtp(s):// URL.
    smpp_url: str = ""
    smtp_url: str = ""

    # Sender identity (F20).
    sms_source: str = "1789"
    mail_from: str = "no-reply@alert.tocsin.example"
    cap_sender: str = "alert@tocsin.example"
    public_base_url: str = "http://127.0.0.1:8000"

    # Tariffs (F29), EUR excl. VAT.
    sms_segment_price_eur: str = "0.055"
    sms_max_segments: int = Field(default=6, ge=1, le=255,
                                  description="Most SMS segments per message (F14)")

    # Web.
    secret_key: str = Field(default="", description="Cookie signing key; empty = per-var-dir key")
    map_tile_url: str = Field(default="", description="Optional raster tile URL template")

    # Dispatch.
    lease_seconds: float = 30.0
    batch_size: int = 500

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite (WAL) at ``<var_dir>/tocsin.db``."""
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.var_dir / 'tocsin.db').resolve()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests call ``get_settings.cache_clear()``)."""
    return Settings()
