"""`python -m bot campaign ...`: the stable command line for operators and scripts.

The CLI layer (bot/cli.py) hands in how to open the database (`open_store`), so this module
needs nothing above the campaign service."""

from __future__ import annotations

import argparse
import asyncio
import functools
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import yaml

from bot.campaigns.service import (
    CampaignDraft,
    CampaignError,
    CampaignService,
    campaign_reply,
    parse_link,
    parse_local_time,
    validate_quiz,
)
from bot.contracts.messages import Quiz
from bot.settings import Settings

QUIZ_FILE_HELP = """JSON or YAML: {"question": "...", "options": ["...", "..."], "correct": <index from 0>,
"explanation": "..."} (Telegram quiz poll limits: question <= 300 chars, 2-12 options of <= 100 chars,
explanation <= 200 chars)"""


def operator_identity() -> str:
    """Who runs the CLI without --by: named as an operator, never a staff member, so it can
    create and steer campaigns but never approve one (the two-person rule needs staff)."""
    try:
        return f"operator:{getpass.getuser()}"
    except Exception:  # no login name (some containers)
        return "operator:cli"


# settings -> (database engine, Store), as bot/runtime.py's open_store: migrated and ready.
OpenStore = Callable[[Settings], Awaitable[tuple[Any, Any]]]


def add_parser(sub, open_store: OpenStore) -> None:
    camp = sub.add_parser("campaign", help="create and steer broadcast campaigns")
    cs = camp.add_subparsers(dest="campaign_command", required=True)
    create = cs.add_parser("create", help="create a campaign; prints its id")
    create.add_argument("--title", required=True)
    text = create.add_mutually_exclusive_group(required=True)
    text.add_argument("--text")
    text.add_argument("--text-file", type=Path)
    create.add_argument("--image", help="https URL of an image")
    create.add_argument("--link", action="append", default=[], metavar="LABEL=URL",
                        help="a link button under the message (https only; repeatable)")
    create.add_argument("--quiz-file", type=Path, metavar="F", help=QUIZ_FILE_HELP)
    create.add_argument("--segment", action="append", default=[],
                        help="all | ward:<slug> | topic:<id> (repeatable)")
    create.add_argument("--channel", choices=["telegram", "zalo", "all"], default="all",
                        help="zalo = subscribers of the Zalo Official Account and of the Zalo Bot")
    when = create.add_mutually_exclusive_group()
    when.add_argument("--at", help="ISO-8601 time (Vietnam time if no offset)")
    when.add_argument("--now", action="store_true", help="send as soon as possible (default)")
    create.add_argument("--expires", help="ISO-8601 time after which unsent messages are dropped")
    create.add_argument("--by", help="who creates it: staff username or telegram:<id> "
                                     "(default: operator:<login>, which can never approve)")
    create.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    approve = cs.add_parser("approve", help="second-person approval")
    approve.add_argument("id", type=int)
    approve.add_argument("--by", required=True, help="staff username or telegram:id")
    cs.add_parser("list", help="recent campaigns")
    status = cs.add_parser("status", help="state and delivery counts")
    status.add_argument("id", type=int)
    status.add_argument("--json", action="store_true")
    for name in ("pause", "resume", "cancel"):
        p = cs.add_parser(name, help=f"{name} a campaign")
        p.add_argument("id", type=int)
        p.add_argument("--by", help="staff username or telegram:<id> (default: operator:<login>)")
    camp.set_defaults(func=functools.partial(run, open_store=open_store))


def load_quiz(path: Path) -> Quiz:
    """A quiz from a JSON or YAML file (JSON is YAML, so one parser reads both)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CampaignError(f"{path}: không đọc được JSON/YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CampaignError(f"{path}: cần một đối tượng có question, options, correct, explanation")
    unknown = set(data) - {"question", "options", "correct", "explanation"}
    missing = {"question", "options", "correct"} - set(data)
    if unknown or missing:
        raise CampaignError(f"{path}: thiếu {sorted(missing)} / thừa {sorted(unknown)} "
                            "(cần question, options, correct, explanation)")
    options = data["options"]
    quiz = Quiz(question=data["question"], options=[str(o) for o in options] if isinstance(options, list) else options,
                correct=data["correct"], explanation=data.get("explanation") or "")
    validate_quiz(quiz)
    return quiz


def _draft(args: argparse.Namespace, created_by: str) -> CampaignDraft:
    text = args.text if args.text is not None else args.text_file.read_text(encoding="utf-8")
    wards, topics = [], []
    for seg in args.segment:
        kind, _, value = seg.partition(":")
        if seg == "all":
            continue
        if kind == "ward" and value:
            wards.append(value)
        elif kind == "topic" and value:
            topics.append(value)
        else:
            raise CampaignError(f"--segment {seg!r}: use all, ward:<slug> or topic:<id>")
    return CampaignDraft(
        title=args.title, text=text, created_by=created_by, wards=wards, topics=topics, channel=args.channel,
        links=[parse_link(item) for item in args.link], image_url=args.image,
        quiz=load_quiz(args.quiz_file) if args.quiz_file else None,
        scheduled_at=parse_local_time(args.at) if args.at else None,
        expires_at=parse_local_time(args.expires) if args.expires else None)


async def _run(settings: Settings, args: argparse.Namespace, open_store: OpenStore) -> int:
    engine, store = await open_store(settings)
    svc = CampaignService(store.sessions, settings.campaign_approval_threshold, settings.ward_names)
    try:
        cmd = args.campaign_command
        by = getattr(args, "by", None)
        if by is not None and cmd != "approve":
            await svc.staff_member(by)  # a name given must be a real staff account
        actor = by or operator_identity()
        if cmd == "create":
            draft = _draft(args, actor)
            if not args.yes:
                count = await svc.count_recipients({"wards": draft.wards, "topics": draft.topics}, draft.channel)
                if not sys.stdin.isatty():
                    print(f"would reach {count} recipients; add --yes to create it", file=sys.stderr)
                    return 1
                print(f"Recipients: {count}. Create? [y/N] ", end="", flush=True)
                answer = await asyncio.to_thread(input)
                if answer.strip().lower() not in ("y", "yes", "c", "co", "có"):
                    return 1
            campaign = await svc.create(draft)
            print(campaign.id)
            if campaign.state == "pending_approval":
                print(f"needs approval by a second staff member: campaign approve {campaign.id} --by ...",
                      file=sys.stderr)
        elif cmd == "approve":
            await svc.approve(args.id, args.by)
            print(f"campaign {args.id} approved")
        elif cmd == "list":
            for c in await svc.recent(50):
                print(f"{c.id}\t{c.state}\t{c.recipients}\t{c.scheduled_at:%Y-%m-%d %H:%M}Z\t{c.title}")
        elif cmd == "status":
            status = await svc.status(args.id)
            if args.json:
                print(json.dumps(status, ensure_ascii=False))
            else:
                print(campaign_reply(await svc.get(args.id)).text)
                print(json.dumps(status, ensure_ascii=False, indent=2))
        else:
            campaign = await getattr(svc, cmd)(args.id, actor)
            print(f"campaign {campaign.id}: {campaign.state}")
        return 0
    except (CampaignError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()


def run(settings: Settings, args: argparse.Namespace, open_store: OpenStore) -> int:
    return asyncio.run(_run(settings, args, open_store))
