"""`/id`: the numeric ids an operator must put in BOT_ADMINS and TEAM_CHATS, from inside the chat.

In a private chat it shows the sender's own id; in a group it shows the group's id. Anyone in
a group may ask: a group id is visible to every member's client and grants nothing (only the
bot's configuration gives it a meaning), and the person setting the bot up is often not the
group's owner. The same text is posted once when the bot is added to a group
(bot/channels/telegram.py).
"""

from __future__ import annotations

from bot.contracts import texts
from bot.contracts.messages import IncomingMessage, Reply

PLATFORM_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "zalobot": "Zalo Bot", "web": "web"}  # bot/channels NAMEs


def group_id_text(chat_id: str, team_chats: dict[str, str]) -> str:
    """The group's id and the TEAM_CHATS form; which slugs already point at it, if any."""
    text = texts.GROUP_ID.format(chat_id=chat_id)
    slugs = sorted(slug for slug, chat in team_chats.items() if chat == chat_id)
    if slugs:
        text += "\n" + texts.GROUP_ID_CONFIGURED.format(slugs=", ".join(slugs))
    return text


def id_reply(msg: IncomingMessage, team_chats: dict[str, str]) -> Reply:
    if msg.is_group:
        return Reply(group_id_text(msg.chat, team_chats), kind="notice")
    platform = PLATFORM_NAMES.get(msg.channel, msg.channel)
    return Reply(texts.MY_ID.format(platform=platform, user_id=msg.user_id, channel=msg.channel), kind="notice")
