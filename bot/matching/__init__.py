"""Vietnamese-aware FAQ matching: normalisation and a scored, thresholded matcher."""

from bot.matching.matcher import Decision, Matcher, MatchResult
from bot.matching.normalize import Normalizer, canonical, fold

__all__ = ["Decision", "MatchResult", "Matcher", "Normalizer", "canonical", "fold"]
