"""One settings object, read from environment variables and `.env`.

Operators and scripts rely on these names (see README and .env.example). ENV_FILE (or the
CLI's `--env-file`) names the settings file instead of ./.env, so `python -m bot doctor`
and `db upgrade` read the same /etc/dvc-assistant.env as the service.
"""

from __future__ import annotations

import os
import re
import secrets
from functools import cached_property
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KNOWLEDGE_DIR = PROJECT_ROOT / "knowledge"
MAX_WARD_SLUG = 32


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    database_url: str = "sqlite+aiosqlite:///./data/bot.sqlite3"
    web_host: str = "127.0.0.1"
    web_port: int = Field(8080, ge=0, le=65535)
    # Seconds a client may take to send a request's headers (also how long an idle
    # keep-alive connection stays open), and to send a request's whole body; slower clients
    # are disconnected, so they cannot hold every descriptor or a handler forever.
    web_header_timeout: float = Field(15.0, gt=0, le=3600)
    web_body_timeout: float = Field(60.0, gt=0, le=3600)
    log_level: str = "INFO"
    log_format: str = "text"  # text or json (one JSON object per line)
    event_loop: str = "auto"  # auto (uvloop where installed) or asyncio
    # Bearer token required by GET /metrics when set.
    metrics_token: str = ""

    telegram_bot_token: str = ""
    telegram_api_base_url: str = "https://api.telegram.org"
    # Webhook mode when set (public https URL that reaches this server); polling otherwise.
    telegram_webhook_url: str = ""
    telegram_webhook_secret: str = ""
    # Messages per second for the whole bot (Telegram allows about 30); broadcasts share it.
    telegram_rate_per_second: float = Field(25.0, gt=0, le=1000)
    # One chat, every channel: broadcasts this far apart, live replies at most 3 per 3 × this
    # (bot/channels/pacing.py). Telegram asks for about one message per second per chat.
    chat_send_interval_seconds: float = Field(1.0, ge=0, le=60)
    # Webhook updates accepted but not yet handled, at most; beyond it the webhook answers 503
    # and Telegram delivers the update again later (bounds what a crash can lose).
    telegram_webhook_backlog: int = Field(300, ge=1, le=100_000)

    # Secret for the keyed hash that pseudonymises users in logs. If empty, one is created
    # in <data dir>/user-key.secret on first start (keep it with your backups).
    user_key_secret: str = ""
    # Where files the bot creates live (user-key.secret). Empty: the SQLite database's
    # folder, or ./data with PostgreSQL.
    data_dir: Path | None = None

    # Wards citizens can choose, "slug:Name" comma-separated, e.g.
    # "phuong-vinh-tuy:Phường Vĩnh Tuy,phuong-hong-ha:Phường Hồng Hà".
    wards: str = ""
    # Community-team chat per ward, "slug:chat_id" comma-separated; "default:<id>" for the rest.
    team_chats: str = ""

    # Campaigns reaching more recipients than this need a second staff member's approval.
    campaign_approval_threshold: int = Field(1000, ge=0)
    # A campaign whose sending process died is taken over by another after this many seconds.
    campaign_lease_seconds: float = Field(60.0, ge=1)
    flood_limit_per_minute: int = Field(20, ge=1)
    handoff_reminder_minutes: int = Field(60, ge=1)
    handoff_auto_close_hours: int = Field(72, ge=1)
    # A team reply a dead process was delivering is retried by another after this long.
    handoff_delivery_lease_seconds: float = Field(120.0, ge=1)
    # How often periodic jobs (reminders, redelivery, purge) run.
    jobs_tick_seconds: float = Field(60.0, ge=0.5)
    # How often each channel's API is checked (getMe) for /healthz.
    channel_check_seconds: float = Field(60.0, ge=0.2)
    log_retention_days: int = Field(365, ge=1)

    # Comma-separated "channel:id" pairs, e.g. "telegram:123,telegram:456".
    bot_admins: str = ""

    knowledge_dir: Path = DEFAULT_KNOWLEDGE_DIR
    # Optional YAML file with ward-local entries/overrides (office address, events).
    knowledge_local_file: Path | None = None

    # Matcher decision thresholds (0-100 scale), calibrated with bench/accuracy.py on the v1 dev set
    # and the tuning half of dev-v2 (never the held-out half), the gap held at 5 so that a vague
    # question ("mật khẩu") gets choices, not a guess.
    match_answer_score: float = Field(77.0, ge=0, le=100)
    match_min_gap: float = Field(5.0, ge=0, le=100)
    match_suggest_score: float = Field(56.5, ge=0, le=100)

    # --- staff dashboard and web chat (bot/dashboard) -------------------------------------
    # Hours a dashboard login lasts before staff must sign in again.
    dashboard_session_hours: int = Field(12, ge=1, le=24 * 30)
    # Secure flag of dashboard/web-chat cookies: "auto" (when the request came over https), "true", "false".
    dashboard_cookie_secure: str = "auto"
    # Failed logins allowed per account (and 4x that per client address) before a pause of this many minutes.
    dashboard_login_max_failures: int = Field(5, ge=1)
    dashboard_login_lock_minutes: int = Field(15, ge=1)
    # Behind a reverse proxy: take the client address and https from X-Forwarded-For / X-Forwarded-Proto.
    trust_proxy_headers: bool = False
    # How often (seconds) each process checks the database for published knowledge changes.
    kb_reload_seconds: float = Field(5.0, gt=0, le=3600)
    # When the weekly knowledge-review digest goes to admins (Vietnam time), e.g. "mon 08:00"; "off" = never.
    kb_digest_at: str = "mon 08:00"
    # Which sites may embed /chat in an iframe (CSP frame-ancestors), space-separated, e.g.
    # "https://phuong.gov.vn 'self'"; "*" = any, "'none'" = nobody.
    webchat_frame_ancestors: str = "*"

    # --- Zalo Official Account (bot/channels/zalo_oa.py) -------------------------------------
    zalo_oa_app_id: str = ""
    # OA Secret Key (webhook settings): checks X-ZEvent-Signature of incoming events.
    zalo_oa_secret_key: str = ""
    # App Secret Key (app settings): sent when refreshing the access token. Zalo documents it as
    # a different key from the OA Secret Key; empty = use ZALO_OA_SECRET_KEY.
    zalo_oa_app_secret: str = ""
    # First tokens only: they seed the database, which keeps the rotated pair afterwards.
    zalo_oa_access_token: str = ""
    zalo_oa_refresh_token: str = ""
    zalo_oa_webhook_path: str = "/zalo/webhook"
    zalo_oa_api_base_url: str = "https://openapi.zalo.me"
    zalo_oa_oauth_base_url: str = "https://oauth.zaloapp.com"
    zalo_oa_rate_per_second: float = Field(10.0, gt=0, le=1000)
    # Webhook events whose timestamp is further than this from our clock are refused (replays).
    zalo_oa_webhook_max_age_seconds: int = Field(600, ge=10)
    # Campaigns reach only citizens who wrote to the OA within this many hours (free replies).
    zalo_oa_campaign_window_hours: float = Field(48.0, gt=0, le=24 * 7)
    # Campaign messages through the OA per calendar month (Vietnam time); 0 = no limit.
    zalo_oa_campaign_monthly_quota: int = Field(0, ge=0)
    # Show choices as Zalo button templates (5 buttons each, each sending its number) above the
    # "Gõ 1, 2 hoặc 3" hint; false = numbered text only (one message per reply, fewer messages
    # counted against Zalo's free replies). Zalo refusing a template also falls back to text.
    zalo_oa_interactive_buttons: bool = True

    # --- Zalo Bot Platform (bot/channels/zalo_bot.py) -------------------------------------------
    zalo_bot_token: str = ""
    zalo_bot_api_base_url: str = "https://bot-api.zaloplatforms.com"
    # Public https URL Zalo posts updates to (webhook mode); empty = getUpdates polling.
    zalo_bot_webhook_url: str = ""
    zalo_bot_webhook_secret: str = ""
    zalo_bot_rate_per_second: float = Field(10.0, gt=0, le=1000)

    @field_validator("telegram_api_base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in {"http", "https"} or not parts.netloc or parts.query or parts.fragment:
            raise ValueError("must be an http(s) URL such as https://api.telegram.org "
                             "or http://127.0.0.1:8081 for a self-hosted Bot API server")
        return value.strip().rstrip("/")

    @model_validator(mode="after")
    def _suggest_not_above_answer(self) -> Settings:
        if self.match_suggest_score > self.match_answer_score:
            raise ValueError(
                f"MATCH_SUGGEST_SCORE ({self.match_suggest_score:g}) must not exceed MATCH_ANSWER_SCORE "
                f"({self.match_answer_score:g}): a score good enough to answer must be good enough to suggest")
        return self

    @field_validator("dashboard_cookie_secure")
    @classmethod
    def _secure_mode(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in {"auto", "true", "false"}:
            raise ValueError("must be auto, true or false")
        return value

    @field_validator("kb_digest_at")
    @classmethod
    def _weekly_time(cls, value: str) -> str:
        value = " ".join(value.lower().split())
        if value != "off" and not re.fullmatch(r"(mon|tue|wed|thu|fri|sat|sun) ([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("use a weekday and a time such as 'mon 08:00' (Vietnam time), or 'off'")
        return value

    @field_validator("webchat_frame_ancestors")
    @classmethod
    def _frame_sources(cls, value: str) -> str:
        """CSP frame-ancestors sources; 'self' and 'none' may be written with or without quotes."""
        sources = []
        for token in value.split():
            keyword = token.strip("'").lower()
            if keyword in ("self", "none"):
                sources.append(f"'{keyword}'")
            elif _FRAME_SOURCE.fullmatch(token):
                sources.append(token)
            else:
                raise ValueError(f"{token!r} is not a frame source; use space-separated origins such as "
                                 "https://phuong.gov.vn, 'self', 'none' or *")
        if "'none'" in sources and len(sources) > 1:
            raise ValueError("'none' cannot be combined with other sources")
        return " ".join(sources) or "'none'"

    @field_validator("data_dir", mode="before")
    @classmethod
    def _blank_dir(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return value

    @field_validator("log_format", "event_loop")
    @classmethod
    def _one_of(cls, value: str, info) -> str:
        allowed = {"log_format": ("text", "json"), "event_loop": ("auto", "asyncio")}[info.field_name]
        value = value.lower()
        if value not in allowed:
            raise ValueError(f"must be {' or '.join(allowed)}")
        return value

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    @field_validator("bot_admins")
    @classmethod
    def _admins_shape(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            channel, _, ident = item.partition(":")
            if not channel or not ident:
                raise ValueError(f"{item!r} is not of the form channel:id")
        return value

    @cached_property
    def admin_ids(self) -> list[tuple[str, str]]:
        pairs = []
        for item in filter(None, (part.strip() for part in self.bot_admins.split(","))):
            channel, _, ident = item.partition(":")
            pairs.append((channel.strip(), ident.strip()))
        return pairs

    @field_validator("wards", "team_chats")
    @classmethod
    def _pairs_shape(cls, value: str) -> str:
        _parse_pairs(value)
        return value

    @field_validator("wards")
    @classmethod
    def _ward_slugs_fit_buttons(cls, value: str) -> str:
        for slug, _name in _parse_pairs(value):
            if len(slug.encode()) > MAX_WARD_SLUG:
                raise ValueError(f"ward slug {slug!r} is longer than {MAX_WARD_SLUG} characters "
                                 "(it travels inside Telegram buttons, which allow 64 bytes)")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _secret_charset(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value):
            raise ValueError("use 1-256 characters from A-Z, a-z, 0-9, _ and -")
        return value

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @field_validator("zalo_oa_webhook_path")
    @classmethod
    def _zalo_path(cls, value: str) -> str:
        if not re.fullmatch(r"/[A-Za-z0-9/_.-]*", value):
            raise ValueError("must be a URL path starting with /, e.g. /zalo/webhook")
        return value

    @field_validator("zalo_bot_webhook_secret")
    @classmethod
    def _zalo_bot_secret(cls, value: str) -> str:
        if value and not 8 <= len(value) <= 256:
            raise ValueError("must be 8-256 characters (Zalo's setWebhook rule)")
        return value

    @field_validator("zalo_bot_webhook_url")
    @classmethod
    def _zalo_bot_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError("must be the public https URL Zalo posts updates to")
        return value

    @property
    def zalo_oa_missing(self) -> list[str]:
        """Settings the Zalo OA channel still needs (empty = it can run; both missing = off).
        Tokens are not among them: `python -m bot zalo authorize` stores the first pair in the
        database, or ZALO_OA_ACCESS_TOKEN/ZALO_OA_REFRESH_TOKEN seed it."""
        return [name.upper() for name in ("zalo_oa_app_id", "zalo_oa_secret_key") if not getattr(self, name)]

    @cached_property
    def ward_names(self) -> dict[str, str]:
        return dict(_parse_pairs(self.wards))

    @cached_property
    def team_chat_ids(self) -> dict[str, str]:
        return dict(_parse_pairs(self.team_chats))

    def team_chat_for(self, ward: str | None) -> str | None:
        chats = self.team_chat_ids
        return chats.get(ward or "", chats.get("default"))

    @property
    def resolved_data_dir(self) -> Path:
        """DATA_DIR, else the SQLite file's folder (so a CLI run from any directory finds the
        same secret as the service), else ./data."""
        if self.data_dir is not None:
            return self.data_dir
        from sqlalchemy.engine import make_url

        url = make_url(self.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            return Path(url.database).expanduser().parent
        return Path("data")

    @property
    def user_key_secret_file(self) -> Path:
        """<data dir>/user-key.secret; without DATA_DIR, an existing ./data/user-key.secret (where
        earlier versions always kept it) is still used, so upgrading never changes user keys."""
        path = self.resolved_data_dir / "user-key.secret"
        legacy = Path("data") / "user-key.secret"
        if self.data_dir is None and not path.exists() and legacy.exists():
            return legacy
        return path

    def resolved_user_key_secret(self) -> str:
        """The configured secret, or one generated once and kept in <data dir>/user-key.secret."""
        if self.user_key_secret:
            return self.user_key_secret
        path = self.user_key_secret_file
        data_dir = path.parent
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        data_dir.mkdir(parents=True, exist_ok=True)
        secret = secrets.token_hex(32)
        path.write_text(secret, encoding="utf-8")
        path.chmod(0o600)
        return secret


# A CSP host source: *, a scheme (https:), or [scheme://]host[:port] with an optional leading *. wildcard.
_FRAME_SOURCE = re.compile(r"\*|https?:|(https?://)?(\*\.)?[A-Za-z0-9.-]+(:(\d{1,5}|\*))?")


def _parse_pairs(value: str) -> list[tuple[str, str]]:
    pairs = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        key, sep, val = item.partition(":")
        if not sep or not key.strip() or not val.strip():
            raise ValueError(f"{item!r} is not of the form key:value")
        pairs.append((key.strip(), val.strip()))
    return pairs


class ConfigurationError(Exception):
    """Raised with a message naming the setting or file that is wrong."""


def env_files(paths: list[str] | None = None) -> tuple[Path, ...] | None:
    """Settings files to read: `paths` (CLI --env-file), else ENV_FILE (comma-separated;
    later files win, like several EnvironmentFile= lines), else None (= ./.env).

    Unlike ./.env, a named file must exist: a typo must not silently fall back to defaults
    (and migrate a fresh SQLite file instead of the production database)."""
    names = paths or [p.strip() for p in os.environ.get("ENV_FILE", "").split(",") if p.strip()]
    if not names:
        return None
    files = tuple(Path(name).expanduser() for name in names)
    for file in files:
        if not file.is_file():
            raise ConfigurationError(f"ENV_FILE: settings file {file} does not exist or is not a file")
    return files


def load_settings(*, env_file: list[str] | None = None, **overrides: object) -> Settings:
    """Settings from the environment and the settings file; `env_file` = the CLI's --env-file."""
    from pydantic import ValidationError

    if "_env_file" not in overrides:
        files = env_files(env_file)
        if files is not None:
            overrides["_env_file"] = files
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper()
            message = err["msg"].removeprefix("Value error, ")
            problems.append(f"{name}: {message}" if name else message)
        raise ConfigurationError("Invalid configuration: " + "; ".join(problems)) from None
