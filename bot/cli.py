"""Command line: `python -m bot [run|kb validate|match|chat|converse]`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
from pathlib import Path

from bot.settings import ConfigurationError, Settings, load_settings


def _configure_logging(settings: Settings) -> None:
    from bot.ops.logs import configure

    configure(settings.log_level, settings.log_format)


def cmd_run(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.service import loop_factory, serve

    with asyncio.Runner(loop_factory=loop_factory(settings)) as runner:
        runner.run(serve(settings))
    return 0


def cmd_kb_validate(settings: Settings, args: argparse.Namespace) -> int:
    from bot.matching.normalize import Lexicon
    from knowledge.loader import collect

    directory = Path(args.dir) if args.dir else settings.knowledge_dir
    local = Path(args.local) if args.local else settings.knowledge_local_file
    kb, problems = collect(directory, local)
    try:
        Lexicon.from_file()
    except ValueError as exc:
        print(f"lexicon: {exc}")
        problems.append(exc)  # type: ignore[arg-type]
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) found in {directory}", file=sys.stderr)
        return 1
    from bot.freshness import overdue_warnings

    late = overdue_warnings(kb, settings)
    print("\n".join(late) if late else "no entry is overdue for review")
    if late and args.strict:
        print(f"{len(late)} entr{'y is' if len(late) == 1 else 'ies are'} overdue for review (--strict)", file=sys.stderr)
        return 1
    print(f"OK: {len(kb)} entries in {directory}")
    return 0


def cmd_match(settings: Settings, _args: argparse.Namespace) -> int:
    """JSON Lines {"id","text"} on stdin -> one verdict per line on stdout."""
    from bot.runtime import load_live_knowledge

    matcher = load_live_knowledge(settings).matcher
    status = 0
    for number, line in enumerate(sys.stdin, start=1):
        if not line.strip():
            continue
        item = None  # a bad line must not report the previous line's id
        try:
            item = json.loads(line)
            if not isinstance(item, dict):
                raise TypeError("each line must be a JSON object")
            text = item["text"]
            if not isinstance(text, str):
                raise TypeError("text must be a string")
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            ident = item.get("id") if isinstance(item, dict) else None
            print(json.dumps({"id": ident, "line": number, "error": f"bad input: {exc}"}, ensure_ascii=False))
            status = 1
            continue
        out = {"id": item.get("id"), **matcher.match(text).as_dict()}
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return status


def cmd_chat(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.chat import run_chat

    return asyncio.run(run_chat(settings))


def cmd_converse(settings: Settings, _args: argparse.Namespace) -> int:
    """JSON Lines {"id","user","text"} on stdin -> one JSON line per message (see bot/chat.py)."""
    from bot.chat import run_converse

    return asyncio.run(run_converse(settings))


def parse_duration(text: str) -> dt.timedelta:
    """'365d', '12h', '30m', '2w' -> timedelta."""
    units = {"w": "weeks", "d": "days", "h": "hours", "m": "minutes"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit():
        raise argparse.ArgumentTypeError(f"{text!r}: use a number with w, d, h or m, e.g. 365d")
    return dt.timedelta(**{units[text[-1]]: int(text[:-1])})


def cmd_db_upgrade(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.storage.store import open_store

    async def run() -> None:
        engine, _ = await open_store(settings)
        await engine.dispose()

    asyncio.run(run())
    print("database is up to date")
    return 0


def cmd_db_backup(settings: Settings, args: argparse.Namespace) -> int:
    from bot.ops.backup import BackupError, backup_sqlite

    try:
        size = backup_sqlite(settings.database_url, Path(args.path))
    except (BackupError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"backed up to {args.path} ({size} bytes)")
    return 0


def cmd_doctor(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.ops.doctor import report, run_checks

    return report(asyncio.run(run_checks(settings)))


def cmd_zalo_authorize(settings: Settings, args: argparse.Namespace) -> int:
    from bot.ops.zalo_authorize import run

    return run(settings, args.redirect_uri, args.listen, args.timeout)


def cmd_data_purge(settings: Settings, args: argparse.Namespace) -> int:
    from bot.storage.store import open_store

    async def run() -> dict[str, int]:
        engine, store = await open_store(settings)
        try:
            return await store.purge(args.older_than)
        finally:
            await engine.dispose()

    counts = asyncio.run(run())
    print("removed: " + ", ".join(f"{n} {name}" for name, n in counts.items()))
    return 0


async def _open_store(settings: Settings):
    """The database, migrated (imported late: most commands need no database)."""
    from bot.storage.store import open_store

    return await open_store(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Trợ lý dịch vụ công số")
    parser.add_argument("--env-file", action="append", metavar="PATH",
                        help="settings file to read instead of ./.env (repeatable; default ENV_FILE)")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the service (default)").set_defaults(func=cmd_run)

    kb = sub.add_parser("kb", help="knowledge-base tools")
    kb_sub = kb.add_subparsers(dest="kb_command", required=True)
    validate = kb_sub.add_parser("validate", help="check every knowledge file; non-zero exit on problems")
    validate.add_argument("--dir", help="knowledge directory (default KNOWLEDGE_DIR)")
    validate.add_argument("--local", help="local overrides file (default KNOWLEDGE_LOCAL_FILE)")
    validate.add_argument("--strict", action="store_true", help="also fail when an entry is overdue for review")
    validate.set_defaults(func=cmd_kb_validate)
    from bot.freshness import add_parsers as add_freshness_parsers

    add_freshness_parsers(kb_sub)  # kb review|suspend|resume

    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("upgrade", help="apply schema migrations and exit").set_defaults(func=cmd_db_upgrade)
    backup = db_sub.add_parser("backup", help="online backup of the SQLite database to a new file")
    backup.add_argument("path")
    backup.set_defaults(func=cmd_db_backup)
    sub.add_parser("doctor", help="check configuration, database, knowledge base and channels").set_defaults(
        func=cmd_doctor)

    zalo = sub.add_parser("zalo", help="Zalo OA tools")
    zalo_sub = zalo.add_subparsers(dest="zalo_command", required=True)
    authorize = zalo_sub.add_parser("authorize", help="authorise the app for the OA (OAuth v4 with PKCE) and "
                                                      "store the first token pair")
    authorize.add_argument("--redirect-uri", help="the callback URL registered for the app in Zalo's console")
    authorize.add_argument("--listen", type=int, metavar="PORT",
                           help="receive the code on this local port (default callback http://localhost:PORT"
                                "/zalo/callback) instead of pasting the address")
    authorize.add_argument("--timeout", type=float, default=600.0, help="seconds to wait with --listen")
    authorize.set_defaults(func=cmd_zalo_authorize)

    data = sub.add_parser("data", help="stored data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    purge = data_sub.add_parser("purge", help="delete logs older than a period")
    purge.add_argument("--older-than", type=parse_duration, required=True, help="e.g. 365d")
    purge.set_defaults(func=cmd_data_purge)

    from bot.campaigns.cli import add_parser as add_campaign_parser

    add_campaign_parser(sub, open_store=_open_store)

    from bot.dashboard.cli import add_parsers as add_dashboard_parsers

    add_dashboard_parsers(sub, kb_sub)  # staff add|list, kb export

    sub.add_parser("match", help="batch-match JSON Lines from stdin").set_defaults(func=cmd_match)
    sub.add_parser("chat", help="chat with the bot in the terminal").set_defaults(func=cmd_chat)
    sub.add_parser("converse", help="run JSON Lines messages through the conversation").set_defaults(
        func=cmd_converse)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", cmd_run)
    try:
        settings = load_settings(env_file=args.env_file)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings)
    try:
        return func(settings, args)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
