"""`python -m bot doctor`: checks configuration, database, knowledge base and channel APIs,
and says what is wrong and how to fix it.

It only looks: a mistyped SQLite path is reported, not created, and channel checks are
read-only calls (getMe, the OA profile), so it is safe next to a running service.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bot.settings import Settings
from bot.storage.urls import parse_database_url


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


def _missing_sqlite_file(database_url: str) -> Check | None:
    """A SQLite path that does not exist: say so (connecting would create an empty database)."""
    sqlite_file = parse_database_url(database_url).sqlite_file
    if sqlite_file is None:
        return None
    path = Path(sqlite_file).expanduser()
    if not path.parent.is_dir():
        return Check("database", False, f"folder {path.parent} of the SQLite database does not exist",
                     "check DATABASE_URL (an absolute path needs four slashes: sqlite+aiosqlite:////var/lib/...)"
                     " or create the folder, writable by the service user")
    if not path.exists():
        return Check("database", False, f"SQLite database {path} does not exist",
                     "check DATABASE_URL; for a new installation run `python -m bot db upgrade` (or start "
                     "the service) to create it")
    return None


async def _database(settings: Settings) -> Check:
    from bot.storage.db import create_engine, current_revision, head_revision

    missing = _missing_sqlite_file(settings.database_url)
    if missing is not None:
        return missing
    engine = create_engine(settings.database_url)
    try:
        async with asyncio.timeout(10):
            revision = await current_revision(engine)
    except Exception as exc:
        return Check("database", False, f"cannot connect: {type(exc).__name__}: {exc}",
                     "check DATABASE_URL, that the server runs and the user may connect")
    finally:
        await engine.dispose()
    head = head_revision()
    if revision != head:
        return Check("database", False, f"schema at {revision or 'empty'}, code expects {head}",
                     "run `python -m bot db upgrade` (the service also does this at start-up)")
    return Check("database", True, f"reachable, schema at {head}")


def _knowledge(settings: Settings) -> Check:
    from knowledge.loader import collect

    kb, problems = collect(settings.knowledge_dir, settings.knowledge_local_file)
    if problems:
        return Check("knowledge base", False, f"{len(problems)} problem(s), first: {problems[0]}",
                     "run `python -m bot kb validate` for the full list")
    return Check("knowledge base", True, f"{len(kb)} entries")


def _lexicon(path: Path | None = None) -> Check:
    """The chat lexicon (abbreviations like "mk" = "mật khẩu") the matcher cannot work without."""
    from bot.matching.normalize import LEXICON_FILE, Lexicon

    path = path or LEXICON_FILE
    try:
        lexicon = Lexicon.from_file(path)
    except ValueError as exc:
        return Check("lexicon", False, str(exc), f"restore {path} from the release (valid YAML)")
    if not lexicon.abbreviations:
        return Check("lexicon", False, f"{path} has no abbreviations",
                     "restore the file from the release: without it chat-style questions go unanswered")
    return Check("lexicon", True, f"{len(lexicon.abbreviations)} abbreviations, {len(lexicon.fillers)} fillers")


async def _http_ok(url: str, *, method: str = "GET", headers: dict | None = None,
                   json: dict | None = None) -> tuple[bool, str, dict | None]:
    """(answered ok, detail, body) for a Telegram-style {"ok"} or Zalo OA-style {"error": 0} API."""
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.request(method, url, headers=headers, json=json) as resp:
                body = await resp.json(content_type=None)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}", None
    if isinstance(body, dict) and (body.get("ok") is True or body.get("error") == 0):
        return True, "answers", body
    return False, f"HTTP {resp.status}: {str(body)[:200]}", body if isinstance(body, dict) else None


async def _bot_api(name: str, token: str, base_url: str, webhook_url: str, *, token_setting: str,
                   token_from: str, base_setting: str, webhook_setting: str, platform: str,
                   method: str = "GET", json: dict | None = None) -> Check:
    """getMe on a Telegram-style Bot API (Telegram's and the Zalo Bot Platform's are alike)."""
    if not token:
        return Check(name, True, f"off ({token_setting} not set)")
    ok, detail, _ = await _http_ok(f"{base_url.rstrip('/')}/bot{token}/getMe", method=method, json=json)
    if not ok:
        return Check(name, False, f"getMe failed: {detail}",
                     f"check {token_setting} (from {token_from}) and that this machine reaches {base_setting}")
    if webhook_url and not webhook_url.startswith("https://"):
        return Check(name, False, f"{webhook_setting} is not https",
                     f"{platform} only delivers webhooks to https URLs; put the bot behind a TLS proxy")
    return Check(name, True, f"Bot API answers ({'webhook' if webhook_url else 'polling'} mode)")


async def _telegram(settings: Settings) -> Check:
    return await _bot_api("telegram", settings.telegram_bot_token, settings.telegram_api_base_url,
                          settings.telegram_webhook_url, token_setting="TELEGRAM_BOT_TOKEN",
                          token_from="@BotFather", base_setting="TELEGRAM_API_BASE_URL",
                          webhook_setting="TELEGRAM_WEBHOOK_URL", platform="Telegram")


async def _stored_zalo_token(settings: Settings) -> str:
    """The OA access token the service uses now: the rotated pair in the database wins over
    ZALO_OA_ACCESS_TOKEN, which is only the first token (empty if unreadable)."""
    from bot.storage.tokens import read_access_token

    if _missing_sqlite_file(settings.database_url) is not None:
        return ""
    return await read_access_token(settings.database_url, f"zalo_oa:{settings.zalo_oa_app_id}"[:96])


async def _zalo_oa(settings: Settings) -> Check:
    missing = settings.zalo_oa_missing
    if len(missing) == 2:
        return Check("zalo oa", True, "off (ZALO_OA_APP_ID not set)")
    if missing:
        return Check("zalo oa", False, f"{', '.join(missing)} not set",
                     "copy them from the Zalo developer console (app and OA webhook settings)")
    token = await _stored_zalo_token(settings) or settings.zalo_oa_access_token
    if not token and settings.zalo_oa_refresh_token:
        return Check("zalo oa", True, "no access token yet: the service gets one with the refresh token")
    if not token:
        return Check("zalo oa", False, "no token yet: the app has not been authorised",
                     "run `python -m bot zalo authorize` (it stores the first token pair)")
    base = settings.zalo_oa_api_base_url.rstrip("/")
    ok, detail, body = await _http_ok(f"{base}/v2.0/oa/getoa", headers={"access_token": token})
    if ok:
        name = ((body or {}).get("data") or {}).get("name", "")
        return Check("zalo oa", True, f"OA API answers ({name})" if name else "OA API answers")
    if body is not None and body.get("error") in (-216, -220):
        return Check("zalo oa", False, f"the access token was refused: {detail}",
                     "the service refreshes it with the refresh token; if that keeps failing, authorise the "
                     "app again with `python -m bot zalo authorize`")
    return Check("zalo oa", False, f"getoa failed: {detail}",
                 "check the ZALO_OA_* settings and that this machine reaches ZALO_OA_API_BASE_URL")


async def _zalo_bot(settings: Settings) -> Check:
    return await _bot_api("zalo bot", settings.zalo_bot_token, settings.zalo_bot_api_base_url,
                          settings.zalo_bot_webhook_url, token_setting="ZALO_BOT_TOKEN",
                          token_from="the Zalo Bot Creator", base_setting="ZALO_BOT_API_BASE_URL",
                          webhook_setting="ZALO_BOT_WEBHOOK_URL", platform="Zalo",
                          method="POST", json={})


def _configuration(settings: Settings) -> list[Check]:
    checks = []
    if settings.team_chats and not settings.telegram_bot_token:
        checks.append(Check("hand-off", False, "TEAM_CHATS is set but Telegram is off",
                            "team groups live on Telegram: set TELEGRAM_BOT_TOKEN"))
    unknown = [w for w in settings.team_chat_ids if w != "default" and settings.ward_names
               and w not in settings.ward_names]
    if unknown:
        checks.append(Check("hand-off", False, f"TEAM_CHATS names unknown wards: {', '.join(unknown)}",
                            "use ward slugs listed in WARDS (or 'default')"))
    if not settings.user_key_secret:
        secret = settings.user_key_secret_file
        if secret.exists():
            checks.append(Check("privacy", True, f"USER_KEY_SECRET not set: using {secret} "
                                "(keep that file with your backups)"))
        else:
            checks.append(Check("privacy", True, f"USER_KEY_SECRET not set and {secret} does not exist yet: "
                                "a new one is made on first start. If this installation already has data, "
                                "set DATA_DIR to the folder that holds its user-key.secret instead"))
    return checks


async def run_checks(settings: Settings) -> list[Check]:
    checks = [Check("configuration", True, "settings load")]
    checks += _configuration(settings)
    checks.append(await _database(settings))
    checks.append(_knowledge(settings))
    checks.append(_lexicon())
    checks += await asyncio.gather(_telegram(settings), _zalo_oa(settings), _zalo_bot(settings))
    return checks


def report(checks: list[Check]) -> int:
    for check in checks:
        mark = "OK  " if check.ok else "FAIL"
        print(f"[{mark}] {check.name}: {check.detail}")
        if not check.ok and check.fix:
            print(f"       how to fix: {check.fix}")
    failed = sum(not c.ok for c in checks)
    print("all checks passed" if not failed else f"{failed} problem(s) found")
    return 1 if failed else 0
