"""Curated FAQ content (YAML files beside this module) with its schema and loader."""

from knowledge.loader import KnowledgeBase, load_knowledge_base, validate_knowledge
from knowledge.schema import CATEGORIES, Entry

__all__ = ["CATEGORIES", "Entry", "KnowledgeBase", "load_knowledge_base", "validate_knowledge"]
