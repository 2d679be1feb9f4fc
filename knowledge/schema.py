"""Schema of one knowledge-base entry (see knowledge/FORMAT.md)."""

from __future__ import annotations

import datetime as dt
import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Category id -> label shown in menus. Order is the menu order.
CATEGORIES: dict[str, str] = {
    "vneid": "VNeID",
    "dvc": "Dịch vụ công",
    "payments": "Thanh toán số",
    "safety": "An toàn trên mạng",
    "bdhvs": "Bình dân học vụ số",
    "social": "Bảo hiểm, thuế, y tế, giáo dục",
    "bot": "Về trợ lý",
}

# Topics citizens subscribe to and campaigns target: the categories of the main menu.
TOPICS: dict[str, str] = {cat: CATEGORIES[cat] for cat in ("vneid", "dvc", "payments", "safety", "bdhvs")}

MAX_ANSWER_CHARS = 1200

# Parts of an answer a follow-up question can ask for ("còn lệ phí thì sao?"): facet key -> label.
# An entry's `facets` maps some of these keys to a short text answering just that part.
FACETS: dict[str, str] = {
    "fee": "Lệ phí",
    "where": "Nơi làm",
    "time": "Thời gian",
    "documents": "Giấy tờ cần có",
    "conditions": "Điều kiện",
    "elderly": "Người cao tuổi",
    "children": "Trẻ em",
    "computer": "Làm trên máy tính",
    "contact": "Hỏi ai, liên hệ ở đâu",
}
MAX_FACET_CHARS = 400
ID_PATTERN = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)+$")
WARD_PATTERN = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")


class Entry(BaseModel):
    """One curated FAQ entry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    category: str
    title: str = Field(min_length=3)
    questions: list[str] = Field(min_length=1)
    keywords: list[str] = Field(default_factory=list)
    answer: str = Field(min_length=10)
    links: list[str] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list)
    source: str = Field(min_length=3)
    reviewed: dt.date
    wards: list[str] = Field(default_factory=list)
    # Days between reviews; default from knowledge/freshness.py (90 with fees, deadlines or laws, else 180).
    review_days: int | None = Field(default=None, ge=7, le=3650)
    uncertain: bool = False  # facts not confirmed: listed first for review (as is hedged wording)
    facets: dict[str, str] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _id_shape(cls, value: str) -> str:
        if not ID_PATTERN.match(value):
            raise ValueError("id must look like 'area.topic' (lower-case, digits, '_')")
        return value

    @field_validator("category")
    @classmethod
    def _known_category(cls, value: str) -> str:
        if value not in CATEGORIES:
            raise ValueError(f"unknown category {value!r}; use one of {', '.join(CATEGORIES)}")
        return value

    @field_validator("questions", "keywords")
    @classmethod
    def _no_blank_items(cls, value: list[str]) -> list[str]:
        if any(not item or not item.strip() for item in value):
            raise ValueError("must not contain empty items")
        return value

    @field_validator("wards")
    @classmethod
    def _ward_slugs(cls, value: list[str]) -> list[str]:
        for ward in value:
            if not WARD_PATTERN.match(ward):
                raise ValueError(f"ward {ward!r} must be a slug like 'phuong-vinh-tuy'")
        return value

    @field_validator("facets")
    @classmethod
    def _known_facets(cls, value: dict[str, str]) -> dict[str, str]:
        for key, text in value.items():
            if key not in FACETS:
                raise ValueError(f"unknown facet {key!r}; use one of {', '.join(FACETS)}")
            if not isinstance(text, str) or not text.strip() or len(text.strip()) > MAX_FACET_CHARS:
                raise ValueError(f"facet {key!r} needs a text of 1 to {MAX_FACET_CHARS} characters")
        return value

    @property
    def answer_text(self) -> str:
        return self.answer.strip()
