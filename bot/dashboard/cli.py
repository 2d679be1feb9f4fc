"""`python -m bot staff add|list|disable|enable|remove` (dashboard accounts) and `python -m bot kb export` (overlays to YAML)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path

from bot.settings import ConfigurationError, Settings
from bot.storage.store import ROLES


def _read_password(args: argparse.Namespace) -> str:
    """From stdin when piped (scripts), else prompted twice without echo."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise ConfigurationError("the two passwords differ")
    return first


def cmd_staff_add(settings: Settings, args: argparse.Namespace) -> int:
    from bot.dashboard.auth import hash_password, password_problem
    from bot.storage.dashboard_queries import DashboardQueries
    from bot.storage.store import open_store

    username = args.username.strip().lower()
    if not username or len(username) > 64 or any(ch.isspace() for ch in username):
        print("error: --username must be 1-64 characters without spaces", file=sys.stderr)
        return 2
    if args.ward and args.ward not in settings.ward_names:
        known = ", ".join(settings.ward_names) or "WARDS is empty: set it first"
        print(f"error: --ward {args.ward!r} is not in WARDS ({known})", file=sys.stderr)
        return 2
    password = _read_password(args)
    problem = password_problem(password)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    hashed = hash_password(password)

    async def run() -> bool:
        engine, store = await open_store(settings)
        try:
            return await DashboardQueries(store).upsert_staff(username, hashed, args.role, args.ward or None,
                                                              args.telegram)
        finally:
            await engine.dispose()

    created = asyncio.run(run())
    scope = f"ward {args.ward}" if args.ward else "all wards"
    linked = f", linked to telegram:{args.telegram}" if args.telegram else ""
    print(f"{'created' if created else 'updated'} {args.role} account {username!r} ({scope}{linked})")
    return 0


def _staff_change(settings: Settings, args: argparse.Namespace, change: str) -> int:
    from bot.storage.dashboard_queries import DashboardQueries
    from bot.storage.store import open_store

    username = args.username.strip().lower()

    async def run() -> bool:
        engine, store = await open_store(settings)
        try:
            queries = DashboardQueries(store)
            if change == "remove":
                return await queries.remove_staff(username)
            return await queries.set_staff_active(username, change == "enable")
        finally:
            await engine.dispose()

    if not asyncio.run(run()):
        print(f"error: no account {username!r} (see `python -m bot staff list`)", file=sys.stderr)
        return 1
    done = {"disable": "disabled (signed out everywhere)", "enable": "enabled", "remove": "removed"}[change]
    print(f"account {username!r} {done}")
    return 0


def cmd_staff_disable(settings: Settings, args: argparse.Namespace) -> int:
    return _staff_change(settings, args, "disable")


def cmd_staff_enable(settings: Settings, args: argparse.Namespace) -> int:
    return _staff_change(settings, args, "enable")


def cmd_staff_remove(settings: Settings, args: argparse.Namespace) -> int:
    return _staff_change(settings, args, "remove")


def cmd_staff_list(settings: Settings, _args: argparse.Namespace) -> int:
    from bot.storage.store import open_store

    async def run() -> list:
        engine, store = await open_store(settings)
        try:
            return await store.staff.listing()
        finally:
            await engine.dispose()

    for a in asyncio.run(run()):
        link = f"{a.channel}:{a.platform_id}" if a.channel else "-"
        print(f"{a.username or '-':20} {a.role:7} {a.ward or 'all':20} {link:24} {'active' if a.active else 'disabled'}")
    return 0


def cmd_kb_export(settings: Settings, args: argparse.Namespace) -> int:
    from bot.dashboard.overlay import export_yaml
    from bot.runtime import load_live_knowledge
    from bot.storage.dashboard_queries import DashboardQueries
    from bot.storage.store import open_store

    base = load_live_knowledge(settings).kb

    async def run():
        engine, store = await open_store(settings)
        try:
            return await DashboardQueries(store).published_overlays(), await store.kb_status.statuses()
        finally:
            await engine.dispose()

    text, count = export_yaml(base, *asyncio.run(run()))
    if args.out:
        Path(args.out).write_text(text, encoding="utf-8")
        print(f"wrote {count} entries to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def add_parsers(sub: argparse._SubParsersAction, kb_sub: argparse._SubParsersAction) -> None:
    export = kb_sub.add_parser("export", help="write published dashboard entries (and reviews recorded since "
                                              "the files' dates) as knowledge YAML")
    export.add_argument("--out", help="file to write (default: stdout)")
    export.set_defaults(func=cmd_kb_export)

    staff = sub.add_parser("staff", help="dashboard accounts")
    staff_sub = staff.add_subparsers(dest="staff_command", required=True)
    add = staff_sub.add_parser("add", help="create or update an account (password prompted or read from stdin)")
    add.add_argument("--username", required=True)
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--ward", help="limit the account to this ward slug (from WARDS)")
    add.add_argument("--telegram", metavar="USER_ID", help="link to this Telegram user (staff commands in chat)")
    add.set_defaults(func=cmd_staff_add)
    staff_sub.add_parser("list", help="list accounts").set_defaults(func=cmd_staff_list)
    for name, func, text in (("disable", cmd_staff_disable, "block an account and end its sessions"),
                             ("enable", cmd_staff_enable, "allow a disabled account to sign in again"),
                             ("remove", cmd_staff_remove, "delete an account (its audit trail stays)")):
        change = staff_sub.add_parser(name, help=text)
        change.add_argument("--username", required=True)
        change.set_defaults(func=func)
