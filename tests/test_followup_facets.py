"""Follow-ups on the shipped knowledge base: the part asked for comes from the entry's facet, a
group or hotline entry related to it answers when the entry has no such part, and a follow-up
naming another entry gets that entry (its part when it has one), not the previous one's part.
The facets themselves may only repeat figures the fact sheets hold."""

from __future__ import annotations

import pytest

from handlers.followup import FollowupReader, _typed
from knowledge.schema import FACETS
from tests.conversation_harness import conversation
from tests.test_kb_facts import ROOT, shipped_allow_list


@pytest.fixture
async def bot(database_url):
    async with conversation(database_url) as harness:
        yield harness


async def _followup(bot, user: str, first: str, then: str):
    chat = bot.chat(user)
    await chat.send(first)
    return await chat.send(then)


# (first question, follow-up, entry whose part answers it, facet key)
PARTS = [
    ("kích hoạt vneid thế nào", "thế còn trên máy tính?", "vneid.activate", "computer"),
    ("kich hoat vneid", "co mat phi ko", "vneid.activate", "fee"),
    ("xin phiếu lý lịch tư pháp trên vneid", "phí bao nhiêu vậy", "vneid.judicial_record", "fee"),
    ("xin phiếu lý lịch tư pháp trên vneid", "làm cho con nhỏ được không", "vneid.judicial_record", "children"),
    ("đổi số điện thoại vneid", "mất bao lâu", "vneid.change_phone", "time"),
    ("đăng ký kết hôn cần gì", "bao lâu thì có giấy", "dvc.marriage_registration", "time"),
    ("bị lừa chuyển tiền rồi làm sao", "gọi ai bây giờ", "safety.scammed", "contact"),
    ("học kỹ năng số ở đâu", "có mất phí không", "bdhvs.learn", "fee"),
    ("học kỹ năng số ở đâu", "ông bà già học được không", "bdhvs.learn", "elderly"),
    ("đổi bằng lái xe online", "cần giấy tờ gì", "dvc.driving_licence_renew", "documents"),
    ("tách hộ online", "cần mang theo gì", "vneid.household_split", "documents"),
    ("xác nhận cư trú ct07", "bao lâu thì có", "vneid.residence_confirm", "time"),
    ("hóa đơn điện tử máy tính tiền", "ai phải dùng", "biz.e_invoice", "conditions"),
    ("trợ cấp hưu trí xã hội", "những ai được nhận", "ins.social_pension", "conditions"),
    ("mua bhyt hộ gia đình", "học sinh thì sao", "ins.health_renew", "children"),
    ("thẻ bhyt trên vneid", "người già không có điện thoại thông minh thì sao", "vneid.health_insurance", "computer"),
    ("đăng ký khai sinh online", "ông bà làm giùm được không", "dvc.birth_registration", "elderly"),
    # the person described rather than named, a child "cho con", the papers of this procedure
    ("cấp đổi căn cước hết hạn làm ở đâu", "bà tôi 85 tuổi đi lại khó thì sao", "id.card_reissue", "elderly"),
    ("xin lý lịch tư pháp trên vneid như nào", "làm cho con được không", "vneid.judicial_record", "children"),
    ("nhận lương hưu qua tài khoản ngân hàng", "người già không có tài khoản thì sao",
     "vneid.social_security_payments", "elderly"),
    ("trợ cấp hưu trí xã hội cho người già", "nộp hồ sơ ở đâu", "ins.social_pension", "where"),
    ("tôi bị lừa mất tiền qua mạng rồi phải làm sao", "có cần đem theo giấy tờ gì khi đi trình báo không",
     "safety.scammed", "documents"),
]


@pytest.mark.parametrize(("text", "facet"), [
    ("có giá trị như bản giấy không", None),  # "giá trị" is no price
    ("ngân hàng có hoàn lại tiền không", None),
    ("chuyển tiền nhầm rồi thì sao", None),
    ("giá bao nhiêu", "fee"),
    ("có mất tiền không", "fee"),
    ("cho con hỏi mất bao lâu", "time"),  # "cho con hỏi" is politeness, not a child
    ("làm cho con được không", "children"),
])
def test_facet_words_inside_other_phrases_ask_for_no_part(text, facet):
    assert FollowupReader().facet_of(_typed(text)) == facet


@pytest.mark.parametrize(("first", "then", "entry_id", "facet"), PARTS)
async def test_followup_gets_the_part_of_the_entry(bot, first, then, entry_id, facet):
    outcome = await _followup(bot, "p", first, then)
    entry = bot.knowledge.kb.get(entry_id)
    assert (outcome.verdict.kind, outcome.verdict.faq_id) == ("answer", entry_id), then
    [reply] = outcome.replies
    assert reply.text.startswith(f"{entry.title} — {FACETS[facet]}"), reply.text[:120]
    assert entry.facets[facet].strip() in reply.text


# (first question, follow-up, the entry devoted to what it asks): the previous entry has no such part
DEVOTED = [
    ("kích hoạt định danh mức 2", "trẻ em thì làm sao", "vneid.dependents"),
    ("đăng ký tài khoản định danh mức 1", "con nít thì sao", "vneid.dependents"),
    ("nhận biết lừa đảo trên mạng", "trẻ em thì sao", "safety.children"),
    ("cổng dịch vụ công là gì", "tổng đài số mấy", "dvc.hotline"),
    ("quên passcode vneid", "gọi số nào để hỏi", "vneid.hotline"),
]


@pytest.mark.parametrize(("first", "then", "entry_id"), DEVOTED)
async def test_followup_reaches_the_related_entry_devoted_to_it(bot, first, then, entry_id):
    outcome = await _followup(bot, "d", first, then)
    assert (outcome.verdict.kind, outcome.verdict.faq_id) == ("answer", entry_id), then
    assert outcome.replies[0].text.startswith(bot.knowledge.kb.get(entry_id).title)


# (first question, follow-up naming another entry, that entry, the part expected or None for the whole entry)
ELSEWHERE = [
    ("đăng ký khai sinh online", "khai tử thì làm ở đâu", "dvc.death_registration", "where"),
    ("mua bhyt hộ gia đình", "còn vssid tải ở đâu", "ins.vssid", "where"),
    ("xác nhận tình trạng hôn nhân", "còn đăng ký kết hôn thì cần gì", "dvc.marriage_registration", "documents"),
    ("nộp hồ sơ dịch vụ công", "nộp xong tra cứu ở đâu", "dvc.track", "where"),
    ("đăng ký tạm trú trên vneid", "còn tách hộ thì cần giấy tờ gì", "vneid.household_split", "documents"),
    ("làm hộ chiếu online thế nào", "còn làm căn cước cho con thì ở đâu", "id.card_children", None),
    # a question of its own that happens to ask for a part: the matcher's answer, not the previous entry
    ("đăng ký tạm trú trên vneid", "đổi bằng lái xe mất bao lâu", "dvc.driving_licence_renew", None),
    ("làm hộ chiếu online thế nào", "người già nhận trợ cấp hưu trí xã hội điều kiện gì", "ins.social_pension", None),
]


@pytest.mark.parametrize(("first", "then", "entry_id", "facet"), ELSEWHERE)
async def test_followup_naming_another_entry_is_not_answered_with_the_previous_part(bot, first, then,
                                                                                     entry_id, facet):
    outcome = await _followup(bot, "e", first, then)
    entry = bot.knowledge.kb.get(entry_id)
    assert (outcome.verdict.kind, outcome.verdict.faq_id) == ("answer", entry_id), then
    head = outcome.replies[0].text.split("\n")[0]
    assert head == (f"{entry.title} — {FACETS[facet]}" if facet else entry.title)


def test_every_figure_in_a_facet_is_in_the_fact_sheets():
    """tests/test_kb_facts.py reads answers, links and sources; facets are answers too."""
    from knowledge.loader import collect

    allow = shipped_allow_list()
    kb, _ = collect(ROOT / "knowledge", topics_file=None)
    problems = [f"{entry.id} facet {key}: {c.kind} {c.text.strip()!r} is not in the fact sheets"
                for entry in kb.entries for key, text in entry.facets.items() for c in allow.unknown(text)]
    assert not problems, "\n".join(problems)
