"""Dashboard details a new user trips over, over real HTTP on both databases: an unaccented copy
of a question joins its cluster (and leaves with it), the "Đã xử lý" table names entries by
title, a weak guess does not pick a new entry's category, and there is a favicon."""

from __future__ import annotations

import re

import pytest

from bot.matching.normalize import fold
from tests.dashboard_harness import running_site
from tests.test_dashboard_pages import act, cluster_forms

CAT = "con mèo nhà tôi bỏ ăn mấy hôm nay"
CAT_PLAIN = "con meo nha toi bo an may hom nay"


@pytest.fixture
async def site(database_url):
    async with running_site(database_url) as s:
        await s.account("admin", "admin")
        await s.account("can-bo", "staff")
        yield s


def cluster_block(html: str, text: str) -> str:
    return next(b for b in html.split('<article class="cluster') if text in b.split("</h2>")[0].lower())


async def test_unaccented_copy_is_clustered_and_closed_with_the_accented_question(site):
    await site.seed_question(CAT, ward="phuong-a")
    await site.seed_question(CAT, ward="phuong-b", days_ago=1)
    await site.seed_question(CAT_PLAIN, ward="phuong-a")
    staff = await site.client("admin")  # an admin's link is live at once (staff's go to review)
    page = await staff.get("/dashboard/unanswered")
    assert page.text.count('<article class="cluster') == 1 and "3×" in page.text
    forms = cluster_forms(page.text, "con mèo")
    assert len(forms) == 2
    done = await act(staff, "link", forms, entry_id="bot.human", back="")
    assert "Đã gắn câu hỏi" in done.text
    assert "hom nay" not in fold((await staff.get("/dashboard/unanswered?fragment=1")).text.lower())

    closed = await staff.get("/dashboard/unanswered?view=closed")
    title = site.runtime.knowledge.kb.get("bot.human").title
    rows = [r for r in closed.text.split("<tr>") if "hom nay" in fold(r)]
    assert len(rows) == 2 and all(f'<a href="/dashboard/kb/entry/bot.human">{title}</a>' in r for r in rows)


async def test_a_weak_guess_does_not_choose_the_new_entrys_category(site):
    await site.seed_question(CAT, ward="phuong-a")
    staff = await site.client("can-bo")
    block = cluster_block((await staff.get("/dashboard/unanswered")).text, "con mèo")
    score = site.runtime.knowledge.matcher.scores(CAT)[1][0][1]
    assert score < site.runtime.knowledge.matcher.thresholds.suggest_score  # the bot only guessed
    assert "Trợ lý đoán" in block and 'name="guess" value=""' in block
    draft = await act(staff, "draft", cluster_forms(block, "con mèo"), guess="", back="")
    select = draft.text.split('name="category"')[1].split("</select>")[0]
    assert " selected" not in select


async def test_a_confident_guess_still_chooses_the_category(site):
    question = "quên mật khẩu vneid thì làm thế nào"
    await site.seed_question(question, ward="phuong-a", decision="answer", outcome="unhelpful",
                             faq_id="vneid.forgot_password")
    staff = await site.client("can-bo")
    block = cluster_block((await staff.get("/dashboard/unanswered")).text, "mật khẩu")
    guess = re.search(r'name="guess" value="([^"]*)"', block).group(1)
    assert guess and site.runtime.knowledge.kb.get(guess).category == "vneid"
    draft = await act(staff, "draft", cluster_forms(block, "mật khẩu"), guess=guess, back="")
    assert '<option value="vneid" selected>' in draft.text


async def test_favicon_is_served_and_linked(site):
    staff = await site.client("can-bo")
    for path in ("/dashboard/unanswered", "/chat", "/dashboard/login"):
        page = await staff.get(path)
        assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page.text, path
    icon = await staff.get("/favicon.ico")  # followed to the SVG
    assert icon.status == 200 and icon.url.endswith("/static/favicon.svg") and icon.text.startswith("<svg")
