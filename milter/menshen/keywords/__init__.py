"""Wordlists, the keyword matcher and wordlist lint."""

from menshen.keywords.matcher import KeywordMatcher, Match, SearchResult
from menshen.keywords.wordlist import (
    Term,
    Wordlist,
    WordlistError,
    load_wordlist,
    load_wordlist_dir,
)

__all__ = [
    "KeywordMatcher",
    "Match",
    "SearchResult",
    "Term",
    "Wordlist",
    "WordlistError",
    "load_wordlist",
    "load_wordlist_dir",
]
