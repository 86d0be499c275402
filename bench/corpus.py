"""Deterministic synthetic mail corpus for the benchmarks.

In:  `generate_corpus(n, seed)`: how many messages and the seed of a `random.Random`;
     `cjk_heavy_text(n_chars, seed)`: length and seed.
Out: `generate_corpus` returns n RFC 5322 messages (bytes, CRLF) of 10-100 KB:
     40 % Chinese (half UTF-8, half GB18030, base64 bodies, RFC 2047 subjects) and 60 %
     English (UTF-8 quoted-printable); shapes mixed between plain text,
     multipart/alternative with HTML and multipart/mixed with 1-3 attachments of unique
     random bytes (so no scanner cache can serve a repeat). `cjk_heavy_text` returns text
     that is about 70 % CJK (common hanzi) and 30 % Latin words.
Fails: never for n >= 0.
Thread safety: pure functions; every call builds its own random.Random.
"""

from __future__ import annotations

import base64
import binascii
import random

# The most common hanzi, enough for realistic byte and character statistics.
COMMON_HANZI = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说"
    "产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点"
    "从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原"
    "又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革"
    "位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强"
    "放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交"
    "受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八"
    "离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布"
    "复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精"
    "值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照"
    "参红细引听该铁价严龙飞"
)
LATIN_WORDS = (
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "on",
    "that",
    "with",
    "as",
    "by",
    "at",
    "from",
    "this",
    "be",
    "are",
    "or",
    "an",
    "it",
    "was",
    "we",
    "our",
    "meeting",
    "report",
    "contract",
    "invoice",
    "schedule",
    "project",
    "update",
    "review",
    "budget",
    "customer",
    "order",
    "delivery",
    "payment",
    "quarter",
    "team",
    "office",
    "client",
    "service",
    "product",
    "price",
    "market",
    "plan",
)

_ATTACHMENT_NAMES = ("report.pdf", "contract.docx", "photo.jpg", "scan.pdf", "notes.docx")
_ATTACHMENT_TYPES = {
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".jpg": "image/jpeg",
}


def cjk_heavy_text(n_chars: int, seed: int) -> str:
    """About 70 % CJK from the common hanzi, the rest Latin words, n_chars long."""
    rng = random.Random(seed)
    out: list[str] = []
    size = 0
    while size < n_chars:
        if rng.random() < 0.7:
            run = "".join(rng.choices(COMMON_HANZI, k=rng.randint(4, 20)))
        else:
            run = " " + " ".join(rng.choices(LATIN_WORDS, k=rng.randint(1, 4))) + " "
        out.append(run)
        size += len(run)
        if rng.random() < 0.05:
            out.append("\n")
            size += 1
    return "".join(out)[:n_chars]


def _english_text(rng: random.Random, n_chars: int) -> str:
    words: list[str] = []
    size = 0
    while size < n_chars:
        word = rng.choice(LATIN_WORDS)
        words.append(word)
        size += len(word) + 1
        if rng.random() < 0.08:
            words.append(".\n")
    return " ".join(words)[:n_chars]


def _encoded_word(text: str, charset: str) -> str:
    return f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode('ascii')}?="


def _b64_lines(data: bytes) -> list[str]:
    text = base64.b64encode(data).decode("ascii")
    return [text[i : i + 76] for i in range(0, len(text), 76)]


def _text_part(rng: random.Random, chinese: bool, charset: str, n_chars: int) -> list[str]:
    if chinese:
        text = cjk_heavy_text(n_chars, rng.randrange(1 << 30))
        body = _b64_lines(text.encode(charset, "replace"))
        cte = "base64"
    else:
        text = _english_text(rng, n_chars)
        body = binascii.b2a_qp(text.encode("utf-8")).decode("ascii").split("\n")
        cte = "quoted-printable"
    return [
        f"Content-Type: text/plain; charset={charset}",
        f"Content-Transfer-Encoding: {cte}",
        "",
        *body,
    ]


def _html_part(rng: random.Random, chinese: bool, charset: str, n_chars: int) -> list[str]:
    if chinese:
        text = cjk_heavy_text(n_chars, rng.randrange(1 << 30))
    else:
        text = _english_text(rng, n_chars)
    paragraphs = "".join(f"<p>{p}</p>\n" for p in text.split("\n"))
    html = f"<html><body><div style='font-family:sans-serif'>{paragraphs}</div></body></html>"
    return [
        f"Content-Type: text/html; charset={charset}",
        "Content-Transfer-Encoding: base64",
        "",
        *_b64_lines(html.encode(charset, "replace")),
    ]


def _multipart(subtype: str, boundary: str, parts: list[list[str]]) -> list[str]:
    lines = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"', "", "MIME body."]
    for part in parts:
        lines += [f"--{boundary}", *part]
    lines.append(f"--{boundary}--")
    return lines


def _message(rng: random.Random, index: int) -> bytes:
    chinese = rng.random() < 0.4
    charset = rng.choice(("utf-8", "gb18030")) if chinese else "utf-8"
    target = rng.randint(10_000, 100_000)
    if chinese:
        subject = _encoded_word(cjk_heavy_text(rng.randint(8, 30), index), charset)
        sender = f"{_encoded_word('张伟', charset)} <zhang{index}@example.cn>"
    else:
        subject = " ".join(rng.choices(LATIN_WORDS, k=rng.randint(3, 9))).capitalize()
        sender = f'"John Smith" <john{index}@example.com>'
    shape = rng.choice(("plain", "alternative", "mixed"))
    # Base64 and QP grow text by about a third; multibyte charsets count 2-3 bytes a char.
    per_char = 3 if charset == "utf-8" and chinese else (2 if chinese else 1)
    if shape == "plain":
        body = _text_part(rng, chinese, charset, target * 3 // (4 * per_char))
    elif shape == "alternative":
        n = target * 3 // (8 * per_char)
        body = _multipart(
            "alternative",
            f"alt-{index}",
            [_text_part(rng, chinese, charset, n), _html_part(rng, chinese, charset, n)],
        )
    else:
        n_att = rng.randint(1, 3)
        text_chars = target // (4 * per_char)
        att_bytes = (target * 3 // 4 - text_chars * per_char) // n_att
        parts = [_text_part(rng, chinese, charset, text_chars)]
        for k in range(n_att):
            name = rng.choice(_ATTACHMENT_NAMES)
            ctype = _ATTACHMENT_TYPES[name[name.rfind(".") :]]
            payload = rng.randbytes(max(att_bytes, 256))
            parts.append(
                [
                    f'Content-Type: {ctype}; name="{name}"',
                    "Content-Transfer-Encoding: base64",
                    f'Content-Disposition: attachment; filename="{k}-{name}"',
                    "",
                    *_b64_lines(payload),
                ]
            )
        body = _multipart("mixed", f"mixed-{index}", parts)
    headers = [
        "Received: from mx.example.net (mx.example.net [192.0.2.1]) by mail.example.com",
        f"From: {sender}",
        "To: recipient@example.com",
        f"Subject: {subject}",
        f"Date: Tue, 04 Mar 2025 09:{index % 60:02d}:00 +0000",
        f"Message-ID: <bench-{index}@example.com>",
        "MIME-Version: 1.0",
    ]
    if body[0].startswith("Content-Type: multipart"):
        lines = [*headers, body[0], *body[1:]]
    else:
        lines = [*headers, *body]
    return ("\r\n".join(lines) + "\r\n").encode("ascii")


def generate_corpus(n: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    return [_message(rng, i) for i in range(n)]
