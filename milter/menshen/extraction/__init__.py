"""Extraction: raw message bytes -> ParsedMessage (decoded text, attachments, defects).

The entry point is `Extractor(limits).extract(raw)`; it never raises. The submodules
(`charsets`, `html_text`, `office`) are usable on their own.
"""

from menshen.extraction.extractor import Extractor

__all__ = ["Extractor"]
