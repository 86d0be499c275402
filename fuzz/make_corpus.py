"""Write the committed seed corpora and token dictionaries of the fuzz targets.

In:  `python fuzz/make_corpus.py` (no arguments): reads samples/*.eml, wordlists/*.txt,
     the built-in menshen.yml and the small cases of tests/hostile/hostile_cases.py.
Out: fuzz/corpus/<target>/ seed files (each under 64 KB, the fuzzers' -max_len) and
     fuzz/dictionaries/{mime,yaml,text}.dict in libFuzzer's dictionary format. Files are
     named after their content's origin and written deterministically, so a second run
     changes nothing. Crash inputs added by hand (crash-*) are left alone.
Fails: an OSError if the tree cannot be read or written.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MAX_SEED = 64 * 1024
# Seeds are mutated millions of times: bombs that cost a second per run stay out.
SLOW_CASES = frozenset({"docx-bzip2-bomb", "docx-xml-entities"})
sys.path.insert(0, str(ROOT / "tests" / "hostile"))

from hostile_cases import CASES  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

from menshen.config import builtin_config_text  # noqa: E402

TEXT_SEEDS = {
    "zero-width": "代\u200b开\u200d发\ufeff票",
    "full-width": "ＡＢＣ１２３！ｃｉａｌｉｓ",
    "separators": "代 开*发，票 法.轮_功",
    "traditional": "代開發票 關鍵",
    "combining": "k\u0336e\u0336y\u0336 fou\u0310nd",
    "bidi": "invoice\u202efdp.exe \u2066x\u2069",
    "hangul-jamo": "\u1100\u1161\u11a8 \u3164\u115f",
    "variation-selectors": "代\ufe0f开\U000e0100发票",
    "kangxi": "\u2f00\u2f08 \uf900\ufa0e",
    "turkish": "İstanbul ıi ﬁle ß",
    "mixed-scripts": "pаypal (Cyrillic а) 〇零 ①②",
    "controls": "a\x00b\x07c\x1bd\x7fe\x85f\u2028g",
    "astral": "𠀀𪚥 🀄 \U0001f600 \U000e0041",
    "empty": "",
}
WORDLIST_SEEDS = {
    "bom-crlf": "\ufeff# comment\r\n代开发票\r\n\r\n  cialis  \r\n",
    "comments-only": "# one\n   # two\n\n",
    "hash-in-term": "c# developer\n#not a term\n",
    "nothing-after-normalising": "\u200b\u200d\n！！！\n",
}
CONFIG_SEEDS = {
    "empty": "",
    "monitor": "mode: monitor\n",
    "categories": (
        "wordlists:\n  default_action: tag\n  categories:\n"
        "    review: {action: quarantine, weight: 3}\n    spam: {action: reject}\n"
    ),
    "lists": (
        "lists:\n  allow:\n    senders: [boss@example.com]\n    domains: [.example.org]\n"
        "  deny:\n    client_ips: [192.0.2.0/24, '2001:db8::/32']\n"
    ),
    "quotas": (
        "quotas:\n  enabled: true\n  timezone: Asia/Shanghai\n  rules:\n"
        "    - {name: daily, key: account, window: day, limit: 500}\n"
        "    - {name: burst, key: client_ip, window: 1m, limit: 30, warn_at: 0.5}\n"
    ),
    "limits": "limits:\n  max_mime_depth: 8\n  max_parts: 10\n  extraction_deadline_seconds: 0.5\n",
    "anchors": "a: &x [1, 2]\nb: *x\nmode: *x\n",
    "broken": "mode: [unclosed\nmilter: {socket: 'inet:0.0.0.0'\n",
}
MIME_TOKENS = [
    "From: ",
    "To: ",
    "Subject: ",
    "MIME-Version: 1.0",
    "Content-Type: ",
    "Content-Transfer-Encoding: ",
    "Content-Disposition: attachment; ",
    "Content-Description: ",
    "multipart/mixed",
    "multipart/alternative",
    "message/rfc822",
    "text/plain",
    "text/html",
    "application/octet-stream",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "; boundary=",
    '; boundary="',
    "; charset=",
    "; name=",
    "; filename=",
    "filename*=utf-8''",
    "filename*0*=",
    "filename*1*=",
    "\r\n--",
    "--\r\n",
    "\r\n\r\n",
    "\r\n ",
    "base64",
    "quoted-printable",
    "x-uuencode",
    "8bit",
    "binary",
    "begin 644 ",
    "=?utf-8?b?",
    "=?gb2312?B?",
    "=?big5?q?",
    "?=",
    "=\r\n",
    "==",
    "utf-8",
    "gb2312",
    "gb18030",
    "big5",
    "iso-2022-jp",
    "<html>",
    "<!--",
    "-->",
    "<![CDATA[",
    "<style>",
    "<span style='display:none'>",
    "&#",
    "&amp;",
    "<w:t>",
    "</w:p>",
    "PK\x03\x04",
    "PK\x01\x02",
    "PK\x05\x06",
    "word/document.xml",
    ".docx",
    ".eml",
    ".exe",
    "\u202e",
]
TEXT_TOKENS = [
    "\u200b",
    "\u200d",
    "\ufeff",
    "\u00ad",
    "\u202e",
    "\u3000",
    "\uff01",
    "\u0336",
    "\u0301",
    "\ufe0f",
    "\u3164",
    "。",
    "、",
    "代开发票",
    "開發",
    "cialis",
    "#",
    "\r\n",
]


def _escape(token: str) -> str:
    out = []
    for byte in token.encode("utf-8"):
        char = chr(byte)
        out.append(char if 0x20 <= byte < 0x7F and char not in '"\\' else f"\\x{byte:02x}")
    return '"' + "".join(out) + '"'


def write_dictionary(name: str, tokens: list[str]) -> None:
    lines = [f"# {name}: tokens for libFuzzer (-dict); written by fuzz/make_corpus.py"]
    lines += [_escape(token) for token in dict.fromkeys(tokens) if token]
    (HERE / "dictionaries").mkdir(exist_ok=True)
    (HERE / "dictionaries" / name).write_text("\n".join(lines) + "\n", encoding="ascii")


def write_seed(target: str, name: str, data: bytes) -> None:
    if len(data) > MAX_SEED:
        return
    directory = HERE / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)


def main() -> None:
    for path in sorted((ROOT / "samples").glob("*.eml")):
        write_seed("extract", path.name, path.read_bytes())
    for case in CASES:
        if case.name in SLOW_CASES:
            continue
        data = case.build()
        write_seed("extract", f"hostile-{case.name}.eml", data)
    for name, text in TEXT_SEEDS.items():
        write_seed("normalise", f"{name}.txt", text.encode("utf-8", "surrogatepass"))
    for path in sorted((ROOT / "wordlists").glob("*.txt")):
        write_seed("wordlist", path.name, path.read_bytes())
        write_seed("normalise", f"wordlist-{path.name}", path.read_bytes())
    for name, text in WORDLIST_SEEDS.items():
        write_seed("wordlist", f"{name}.txt", text.encode())
    write_seed("wordlist", "invalid-utf8.txt", b"ok\n\xff\xfe bad\n\x00nul\n")
    builtin = builtin_config_text()
    write_seed("config", "builtin.yml", builtin.encode())
    for name, text in CONFIG_SEEDS.items():
        write_seed("config", f"{name}.yml", text.encode())
    keys = sorted(set(re.findall(r"^\s*#?\s*([a-z_]+):", builtin, re.MULTILINE)))
    write_dictionary(
        "yaml.dict", [*(f"{key}: " for key in keys), "\n  ", "- ", "{", "[", "&a", "*a"]
    )
    write_dictionary("mime.dict", MIME_TOKENS)
    write_dictionary("text.dict", TEXT_TOKENS)


if __name__ == "__main__":
    main()
