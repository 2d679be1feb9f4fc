"""Every phone number, amount, percentage, legal reference and web address the knowledge base
tells citizens comes from the fact sheets (`../shared/kb/facts.md`, `facts-2.md`).

A wrong hotline or fee sends an elderly citizen to the wrong place, so answers may only repeat
figures the researched fact sheets contain. The test extracts those figures from every answer,
link and source, normalises them (dots, commas and spaces in numbers; "500.000đ", "500 nghìn
đồng", "0,5 triệu đồng" are one amount; "1900 0368" and "1900.0368" one phone number) and
looks each up in an allow-list built, at test time, from the fact sheets with the same
extractor.

Documented exceptions (not checked):
- dates ("1/7/2025", "31/12/2026", "12/2026"), and years 1900-2099 standing alone;
- numbers under 100 without a unit or "%" (step numbers, ages, days, counts);
- article numbers ("Điều 176") and version numbers;
- a web address is allowed when its host appears in the fact sheets and, if it has a path,
  when host and path appear there too; a bare host of three or more labels that is the parent
  site of a fact-sheet host is allowed too (a source saying "kontum.gov.vn" for a page on
  huyendakglei.kontum.gov.vn);
- `EXAMPLES`: figures that are illustrations, not facts (a weak password to avoid).
`WITHDRAWN` lists figures the fact sheets contain but tell authors to keep out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path

import pytest

from knowledge.loader import collect

ROOT = Path(__file__).resolve().parent.parent
FACT_FILES = ("facts.md", "facts-2.md")
FACT_DIRS = (ROOT.parent / "shared" / "kb", Path("/work/shared/kb"))  # as bench/devset.py looks

# Figures present in the fact sheets that a re-check says must not be given to citizens.
WITHDRAWN: dict[tuple[str, str], str] = {
    ("phone", "19009068"): "facts-2.md: BHXH hotline 1900 9068 is unconfirmed, keep it out",
}
# Figures that are not facts at all, so need no source.
EXAMPLES: dict[tuple[str, str], str] = {
    ("number", "123456"): "a guessable password or passcode to avoid (safety.password, vneid.passcode)",
}

MULTIPLIERS = {
    "k": 1_000, "nghìn": 1_000, "ngàn": 1_000,
    "tr": 1_000_000, "triệu": 1_000_000, "million": 1_000_000, "M": 1_000_000,
    "tỷ": 1_000_000_000, "tỉ": 1_000_000_000, "billion": 1_000_000_000,
}
_SPACE = r"[ \u00a0\u202f]"
# A number: digit groups of three (dot, comma or space between), or digits with one decimal part.
_NUM = rf"(?<![\d.,])(?:\d{{1,3}}(?:(?:[.,]|{_SPACE})\d{{3}})+(?:[.,]\d+)?|\d+(?:[.,]\d+)?)(?![\d])"
_RANGE = rf"{_NUM}(?:\s*(?:-|đến|tới|/)\s*{_NUM})*"
_MULT = r"(?:k|nghìn|ngàn|triệu|tr|tỷ|tỉ|million|billion|(?<=\d)M)(?![\w])"
_CURRENCY = r"(?:đồng|đ|vnđ|vnd|VNĐ|VND)(?![\w])"
MONEY = re.compile(rf"(?P<nums>{_RANGE})\s*(?:(?P<mult>{_MULT})\s*(?:{_CURRENCY})?|{_CURRENCY})")
PERCENT = re.compile(rf"(?P<nums>{_RANGE})\s*(?:%|phần trăm)")
NUMBER = re.compile(_NUM)

_URL_CHARS = r"[^\s<>\"'`()\[\]*,;]"
URL = re.compile(rf"https?://{_URL_CHARS}+", re.IGNORECASE)
DOMAIN = re.compile(
    rf"(?<![\w@/.-])(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+(?:vn|com|net|org|info|top|co|io|tv|cc)"
    rf"(?![\w-])(?:/{_URL_CHARS}*)?", re.IGNORECASE)
LEGAL_WITH_YEAR = re.compile(r"(?<![\d/])(\d{1,5})/(\d{4})(?:/([A-ZĐ][\wĐ-]*))?(?![\d])")
LEGAL_NAMED = re.compile(r"(?<![\d/])(\d{1,5})/((?:QĐ|NQ|CT|KH|UBND|BHXH|BTC|BCA|BTTTT|SGDĐT)[\wĐ-]*)")
LEGAL_PARTY = re.compile(r"(?<![\d/])(\d{1,3})-((?:NQ|KH|CT)/[A-ZĐ]+)")
DATE = re.compile(r"(?<![\d/.,])(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?(?![\d/])")
PHONE_SERVICE = re.compile(r"(?<![\d.,])(1[89]00)[ .\u00a0]?(\d{3,4})(?:[ .\u00a0]?(\d{2,4}))?(?![\d])")
PHONE_MOBILE = re.compile(r"(?<![\d.,])(?:\+84|0)(?:[ .\u00a0]?\d){9,10}(?![\d])")
VERSION = re.compile(r"(?<![\d.,])\d{1,2}\.\d{1,2}\.\d{1,2}(?![\d.,])")


@dataclass(frozen=True, order=True)
class Claim:
    kind: str  # phone, money, percent, number, legal, web
    value: str  # normalised
    text: str  # as written

    def key(self) -> tuple[str, str]:
        return self.kind, self.value


def parse_number(raw: str, decimal_hint: bool = False) -> Decimal:
    """One number as written in Vietnamese or English text. Groups of exactly three digits after
    every separator are thousands ("1.263.600", "1,263,600", "500 000"); otherwise the single
    separator is a decimal point ("4,5", "15.5"). Before a multiplier ("17.285 million",
    "15,5 triệu") one separator is always decimal."""
    parts = re.split(r"[.,\s\u00a0\u202f]", raw)
    if len(parts) == 1:
        return Decimal(parts[0])
    if decimal_hint and len(parts) == 2 and not re.search(r"\s", raw):
        return Decimal(f"{parts[0]}.{parts[1]}")
    if all(len(p) == 3 for p in parts[1:]):
        return Decimal("".join(parts))
    if len(parts) == 2:
        return Decimal(f"{parts[0]}.{parts[1]}")
    return Decimal("".join(parts))


def canonical(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _numbers(group: str, decimal_hint: bool) -> list[Decimal]:
    try:
        return [parse_number(m.group(0), decimal_hint) for m in NUMBER.finditer(group)]
    except InvalidOperation:
        return []


def normalise_web(address: str) -> str:
    address = re.sub(r"^https?://", "", address.strip(), flags=re.IGNORECASE)
    address = address.rstrip(".:!?")
    host, _, path = address.partition("/")
    host = host.lower().removeprefix("www.")
    path = path.rstrip("/")
    return f"{host}/{path}" if path else host


def extract(text: str) -> list[Claim]:
    """The checkable figures in a text, each once, in a stable order."""
    text = text.replace("[.]", ".").replace("–", "-").replace("—", "-")
    claims: set[Claim] = set()

    def blank(match: re.Match) -> str:
        return " " * len(match.group(0))

    def web(match: re.Match) -> str:
        claims.add(Claim("web", normalise_web(match.group(0)), match.group(0)))
        return blank(match)

    text = URL.sub(web, text)
    text = DOMAIN.sub(web, text)

    def legal(match: re.Match) -> str:
        number, second = match.group(1), match.group(2)
        if match.re is LEGAL_WITH_YEAR:
            if match.group(3) is None and int(number) <= 12:
                return match.group(0)  # month/year: a date, handled below
            claims.add(Claim("legal", f"{int(number)}/{second}", match.group(0)))
        elif match.re is LEGAL_PARTY:
            claims.add(Claim("legal", f"{int(number)}-{second.upper()}", match.group(0)))
        else:
            claims.add(Claim("legal", f"{int(number)}/{second.upper()}", match.group(0)))
        return blank(match)

    for pattern in (LEGAL_WITH_YEAR, LEGAL_NAMED, LEGAL_PARTY):
        text = pattern.sub(legal, text)
    text = DATE.sub(blank, text)
    text = VERSION.sub(blank, text)

    def phone(match: re.Match) -> str:
        claims.add(Claim("phone", re.sub(r"\D", "", match.group(0).replace("+84", "0")), match.group(0)))
        return blank(match)

    text = PHONE_SERVICE.sub(phone, text)
    text = PHONE_MOBILE.sub(phone, text)

    def percent(match: re.Match) -> str:
        for value in _numbers(match.group("nums"), decimal_hint=False):
            claims.add(Claim("percent", canonical(value), match.group(0)))
        return blank(match)

    def money(match: re.Match) -> str:
        mult = match.group("mult")
        factor = MULTIPLIERS.get(mult, MULTIPLIERS.get((mult or "").lower(), 1)) if mult else 1
        for value in _numbers(match.group("nums"), decimal_hint=bool(mult)):
            claims.add(Claim("money", canonical(value * factor), match.group(0)))
        return blank(match)

    text = PERCENT.sub(percent, text)
    text = MONEY.sub(money, text)

    for match in NUMBER.finditer(text):
        value = parse_number(match.group(0))
        if value < 100 or (value == value.to_integral() and 1900 <= value <= 2099 and len(match.group(0)) == 4):
            continue  # step numbers, ages, counts; years
        claims.add(Claim("number", canonical(value), match.group(0)))
    return sorted(claims)


@dataclass(frozen=True)
class AllowList:
    values: dict[str, frozenset[str]]
    hosts: frozenset[str]
    addresses: frozenset[str]

    @classmethod
    def from_text(cls, text: str) -> AllowList:
        claims = extract(text)
        values = {kind: frozenset(c.value for c in claims if c.kind == kind)
                  for kind in ("phone", "money", "percent", "number", "legal")}
        webs = [c.value for c in claims if c.kind == "web"]
        return cls(values, frozenset(w.partition("/")[0] for w in webs), frozenset(webs))

    def allows(self, claim: Claim) -> bool:
        if claim.key() in WITHDRAWN:
            return False
        if claim.key() in EXAMPLES:
            return True
        numbers = self.values["number"] | self.values["phone"]
        match claim.kind:
            case "web":
                host, _, path = claim.value.partition("/")
                if path:
                    return claim.value in self.addresses
                return host in self.hosts or (
                    host.count(".") >= 2 and any(known.endswith("." + host) for known in self.hosts))
            case "phone":
                return claim.value in numbers
            case "number":
                return claim.value in numbers | self.values["money"]
            case "money":
                return claim.value in self.values["money"] | self.values["number"]
            case _:
                return claim.value in self.values[claim.kind]

    def unknown(self, text: str) -> list[Claim]:
        return [claim for claim in extract(text) if not self.allows(claim)]


def find_fact_sheets() -> list[Path] | None:
    for folder in FACT_DIRS:
        paths = [folder / name for name in FACT_FILES]
        if all(path.is_file() for path in paths):
            return paths
    return None


@cache
def shipped_allow_list() -> AllowList:
    paths = find_fact_sheets()
    if paths is None:
        pytest.skip(f"fact sheets {', '.join(FACT_FILES)} not found (looked in {', '.join(map(str, FACT_DIRS))})")
    return AllowList.from_text("\n".join(path.read_text(encoding="utf-8") for path in paths))


# --- the extractor itself --------------------------------------------------------------------

def kinds(text: str) -> set[tuple[str, str]]:
    return {claim.key() for claim in extract(text)}


@pytest.mark.parametrize(
    "text",
    ["500.000đ", "500,000 đ", "500 000 đồng", "500 nghìn đồng", "0,5 triệu đồng", "500k", "500.000 VND"],
)
def test_amount_formats_normalise_to_one_value(text):
    assert kinds(f"Phí {text} mỗi lần.") == {("money", "500000")}


def test_amounts_with_multipliers_ranges_and_lists():
    assert kinds("Mức 15,5 triệu đồng/tháng") == {("money", "15500000")}
    assert kinds("15.5 million đ per month") == {("money", "15500000")}
    assert kinds("about 17.285 million đ") == kinds("khoảng 17,285 triệu đồng") == {("money", "17285000")}
    assert kinds("doanh thu 1 tỷ đồng/năm") == {("money", "1000000000")}
    assert kinds("phạt 500.000-1.000.000 đồng") == {("money", "500000"), ("money", "1000000")}
    assert kinds("từ 8 đến 10 triệu đồng") == {("money", "8000000"), ("money", "10000000")}
    assert kinds("15k/25k/35k") == {("money", "15000"), ("money", "25000"), ("money", "35000")}
    assert kinds("1.263.600 đồng và 1,263,600đ") == {("money", "1263600")}


def test_phones_percentages_legal_references_and_addresses():
    assert kinds("Gọi 1900 0368 hoặc 1900.0368 hay 19000368") == {("phone", "19000368")}
    assert kinds("gọi 0912 345 678") == {("phone", "0912345678")}
    assert kinds("nhắn tới 5656 hoặc gọi 156") == {("number", "5656"), ("number", "156")}
    assert kinds("đóng 4,5% lương cơ sở; giảm 50%") == {("percent", "4.5"), ("percent", "50")}
    assert kinds("Nghị định 70/2025/NĐ-CP và Thông tư 64/2025") == {("legal", "70/2025"), ("legal", "64/2025")}
    assert kinds("Quyết định 757/QĐ-BKHCN; Nghị quyết 68-NQ/TW") == {
        ("legal", "757/QĐ-BKHCN"), ("legal", "68-NQ/TW")}
    assert kinds("Vào https://www.VNeID.gov.vn/ hoặc dichvucong.gov.vn.") == {
        ("web", "vneid.gov.vn"), ("web", "dichvucong.gov.vn")}
    assert kinds("tra cứu tinnhiemmang.vn/website-lua-dao") == {("web", "tinnhiemmang.vn/website-lua-dao")}
    assert kinds("trang giả bhxh[.]co") == {("web", "bhxh.co")}


def test_dates_years_steps_and_small_numbers_are_not_checked():
    text = ("Từ 1/7/2025 đến 31/12/2026 (thông tin 12/2026), năm 2026:\n1. Mở ứng dụng.\n"
            "2. Nhập sai 5 lần thì chờ 15 phút; người từ 75 tuổi. Phiên bản 2.1.0. TP.HCM, v.v.")
    assert extract(text) == []


FAKE_FACTS = """
- Hotline **1900 0368** (support). https://vneid.gov.vn/huong-dan `[OFFICIAL]`
- SMS short code 5656; fee 50,000đ; reduced to 25,000đ until 31/12/2026; 4.5% of base salary.
- Decree 70/2025/NĐ-CP; portal dichvucong.gov.vn.
"""


def test_invented_hotline_fee_percentage_reference_and_site_are_flagged():
    allow = AllowList.from_text(FAKE_FACTS)
    honest = ("Gọi tổng đài 1900 0368 hoặc nhắn 5656. Lệ phí 50.000 đồng (25.000đ đến hết 31/12/2026), "
              "đóng 4,5% lương cơ sở theo Nghị định 70/2025/NĐ-CP. Xem https://vneid.gov.vn/huong-dan "
              "hoặc dichvucong.gov.vn.")
    assert allow.unknown(honest) == []
    invented = ("Gọi tổng đài 1900 1234 hoặc 113, lệ phí 45.000 đồng (30k nếu nộp online), giảm 30%, "
                "theo Nghị định 99/2024/NĐ-CP; xem https://vneid-hotro.com hoặc https://vneid.gov.vn/lam-gia.")
    flagged = {claim.key() for claim in allow.unknown(invented)}
    assert flagged == {
        ("phone", "19001234"), ("number", "113"), ("money", "45000"), ("money", "30000"),
        ("percent", "30"), ("legal", "99/2024"), ("web", "vneid-hotro.com"), ("web", "vneid.gov.vn/lam-gia"),
    }


def test_withdrawn_figures_are_flagged_even_though_the_sheets_name_them():
    allow = AllowList.from_text("BHXH hotline **1900 9068** → Re-checked: unconfirmed, keep it out.")
    assert [c.key() for c in allow.unknown("Gọi 1900 9068.")] == [("phone", "19009068")]


# --- the shipped knowledge base -----------------------------------------------------------------

def test_every_figure_in_the_knowledge_base_is_in_the_fact_sheets():
    allow = shipped_allow_list()
    kb, _ = collect(ROOT / "knowledge", topics_file=None)
    problems = []
    for entry in kb.entries:
        for field, text in (("answer", entry.answer), ("links", "\n".join(entry.links)), ("source", entry.source)):
            problems += [f"{entry.id} {field}: {c.kind} {c.text.strip()!r} ({c.value}) is not in the fact sheets"
                         for c in allow.unknown(text)]
    assert not problems, "\n".join(problems)


def test_parent_site_of_a_known_page_is_allowed_but_not_a_lookalike():
    allow = AllowList.from_text("https://huyendakglei.kontum.gov.vn/gioi-thieu and https://vneid.gov.vn")
    assert allow.unknown("Luật Căn cước (kontum.gov.vn); vneid.gov.vn") == []
    assert [c.value for c in allow.unknown("xem gov.vn, vneid.gov.vn.co, vneid-gov.vn")] == [
        "gov.vn", "vneid-gov.vn", "vneid.gov.vn.co"]
