"""`python -m bot doctor`: checks configuration, database, knowledge base and channel APIs,
and says what is wrong and how to fix it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import aiohttp

from bot.settings import Settings


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""


async def _database(settings: Settings) -> Check:
    from alembic.script import ScriptDirectory

    from bot.storage.db import alembic_config, create_engine, current_revision

    engine = create_engine(settings.database_url)
    try:
        async with asyncio.timeout(10):
            revision = await current_revision(engine)
    except Exception as exc:
        return Check("database", False, f"cannot connect: {type(exc).__name__}: {exc}",
                     "check DATABASE_URL, that the server runs and the user may connect")
    finally:
        await engine.dispose()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
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


async def _http_ok(url: str, *, method: str = "GET", headers: dict | None = None) -> tuple[bool, str]:
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            async with http.request(method, url, headers=headers) as resp:
                body = await resp.json(content_type=None)
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"
    if isinstance(body, dict) and (body.get("ok") is True or body.get("error") == 0):
        return True, "answers"
    return False, f"HTTP {resp.status}: {str(body)[:200]}"


async def _telegram(settings: Settings) -> Check:
    if not settings.telegram_bot_token:
        return Check("telegram", True, "off (TELEGRAM_BOT_TOKEN not set)")
    base = settings.telegram_api_base_url.rstrip("/")
    ok, detail = await _http_ok(f"{base}/bot{settings.telegram_bot_token}/getMe")
    if not ok:
        return Check("telegram", False, f"getMe failed: {detail}",
                     "check TELEGRAM_BOT_TOKEN (from @BotFather) and that this machine reaches "
                     "TELEGRAM_API_BASE_URL")
    if settings.telegram_webhook_url and not settings.telegram_webhook_url.startswith("https://"):
        return Check("telegram", False, "TELEGRAM_WEBHOOK_URL is not https",
                     "Telegram only delivers webhooks to https URLs; put the bot behind a TLS proxy")
    return Check("telegram", True, "Bot API answers (" + ("webhook" if settings.telegram_webhook_url else
                                                           "polling") + " mode)")


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
        checks.append(Check("privacy", True, "USER_KEY_SECRET not set: using data/user-key.secret "
                            "(keep that file with your backups)"))
    return checks


async def run_checks(settings: Settings) -> list[Check]:
    checks = [Check("configuration", True, "settings load")]
    checks += _configuration(settings)
    checks.append(await _database(settings))
    checks.append(_knowledge(settings))
    checks.append(await _telegram(settings))
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
