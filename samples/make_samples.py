"""Write the acceptance sample messages into samples/ (deterministic, stdlib only).

Run: python samples/make_samples.py [OUTPUT_DIR]

Every file is a complete RFC 5322 message with CRLF line endings. Dates, Message-IDs,
boundaries and the embedded .docx are fixed, so re-running produces identical bytes.
samples/README.md says what each message hides and the verdict it should get.
"""

from __future__ import annotations

import base64
import binascii
import io
import sys
import urllib.parse
import zipfile
from pathlib import Path

DATE = "Tue, 04 Mar 2025 09:30:00 +0800"
TO = "=?UTF-8?B?5p2O5piO?= <li.ming@example.com>"


def encoded_word(text: str, charset: str = "UTF-8") -> str:
    data = base64.b64encode(text.encode(charset)).decode("ascii")
    return f"=?{charset}?B?{data}?="


def b64_lines(data: bytes) -> list[str]:
    text = base64.b64encode(data).decode("ascii")
    return [text[i : i + 76] for i in range(0, len(text), 76)] or [""]


def qp_lines(data: bytes) -> list[str]:
    return binascii.b2a_qp(data).decode("ascii").split("\n")


def message(
    name: str,
    subject: str,
    body_headers: list[str],
    body: list[str],
    *,
    sender: str = f"{encoded_word('张伟')} <zhang.wei@example.cn>",
) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {TO}",
        f"Subject: {subject}",
        f"Date: {DATE}",
        f"Message-ID: <{name}@samples.menshen.example>",
        "MIME-Version: 1.0",
        *body_headers,
        "",
        *body,
        "",
    ]
    return "\r\n".join(lines).encode("ascii")


def text_part(text: str, charset: str = "UTF-8", encoding: str = "base64") -> list[str]:
    data = text.encode(charset)
    lines = b64_lines(data) if encoding == "base64" else qp_lines(data)
    return [
        f"Content-Type: text/plain; charset={charset}",
        f"Content-Transfer-Encoding: {encoding}",
        "",
        *lines,
    ]


def multipart(subtype: str, boundary: str, parts: list[list[str]]) -> tuple[list[str], list[str]]:
    body = ["This is a multi-part message in MIME format.", ""]
    for part in parts:
        body += [f"--{boundary}", *part, ""]
    body.append(f"--{boundary}--")
    return [f'Content-Type: multipart/{subtype}; boundary="{boundary}"'], body


def single(part: list[str]) -> tuple[list[str], list[str]]:
    blank = part.index("")
    return part[:blank], part[blank + 1 :]


def minimal_docx(first_run: str, second_run: str) -> bytes:
    """A real, minimal .docx whose one paragraph is split across two runs."""
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/word/document.xml" ContentType="application/'
        'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
        "</Types>"
    )
    rels = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/'
        '2006/relationships/officeDocument" Target="word/document.xml"/>'
        "</Relationships>"
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        "<w:body><w:p>"
        f'<w:r><w:t xml:space="preserve">{first_run}</w:t></w:r>'
        f"<w:r><w:rPr><w:b/></w:rPr><w:t>{second_run}</w:t></w:r>"
        "</w:p><w:p><w:r><w:t>联系人：王经理</w:t></w:r></w:p></w:body></w:document>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, text in (
            ("[Content_Types].xml", content_types),
            ("_rels/.rels", rels),
            ("word/document.xml", document),
        ):
            info = zipfile.ZipInfo(member, date_time=(2025, 3, 4, 9, 30, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text.encode("utf-8"))
    return buffer.getvalue()


def attachment(filename_params: str, content_type: str, data: bytes) -> list[str]:
    return [
        f"Content-Type: {content_type}",
        "Content-Transfer-Encoding: base64",
        f"Content-Disposition: attachment; {filename_params}",
        "",
        *b64_lines(data),
    ]


CLEAN_CN = "您好，附件是本周的工作安排，请查收。如有问题请随时联系我。\n\n张伟\n"


def build() -> dict[str, bytes]:
    samples: dict[str, bytes] = {}

    headers, body = single(text_part(CLEAN_CN))
    samples["kw-subject-gb2312.eml"] = message(
        "kw-subject-gb2312",
        encoded_word("诚信代开发票，税点优惠", "gb2312"),
        headers,
        body,
        sender=f"{encoded_word('财务部', 'gb2312')} <caiwu@example.cn>",
    )

    headers, body = single(
        text_part(
            "尊敬的客户您好：\n本公司长期代开发票，增值税专用发票、普通发票均可，"
            "点数低，可先验票后付款。\n详情请致电 138-0000-0000 王先生。\n",
            "gbk",
        )
    )
    samples["kw-body-gbk-base64.eml"] = message(
        "kw-body-gbk-base64", encoded_word("合作咨询", "gbk"), headers, body
    )

    headers, body = single(
        text_part(
            "老板您好，月底需要发票冲账吗？我司可代开发票，各行业均可开具，真票可查，价格面议。\n",
            "gb18030",
            "quoted-printable",
        )
    )
    samples["kw-body-gb18030-qp.eml"] = message(
        "kw-body-gb18030-qp", encoded_word("月底冲账", "gb18030"), headers, body
    )

    headers, body = single(
        text_part("您好，本公司專業代開發票，價格優惠，歡迎來電洽詢。\n", "big5")
    )
    samples["kw-body-big5.eml"] = message(
        "kw-body-big5",
        encoded_word("商務合作", "big5"),
        headers,
        body,
        sender=f"{encoded_word('陳先生', 'big5')} <chen@example.tw>",
    )

    html = (
        "<html><head><title>报价</title></head><body>"
        "<p>您好，请查收本周报价。</p>"
        "<p>另：本公司长期代<b>开</b><!-- x -->&#21457;<span>票</span>，欢迎联系。</p>"
        "</body></html>"
    )
    html_part = [
        "Content-Type: text/html; charset=UTF-8",
        "Content-Transfer-Encoding: base64",
        "",
        *b64_lines(html.encode("utf-8")),
    ]
    headers, body = multipart(
        "alternative", "----=_alt_0001", [text_part("您好，请查收本周报价。\n"), html_part]
    )
    samples["kw-html-split.eml"] = message("kw-html-split", encoded_word("本周报价"), headers, body)

    headers, body = single(text_part("您好，我们可以代\u200b开\u200d发\ufeff票，请回复。\n"))
    samples["kw-zero-width.eml"] = message("kw-zero-width", encoded_word("业务联系"), headers, body)

    headers, body = single(text_part("您好，我们可以代 开*发 票，量大从优。\n"))
    samples["kw-spaced.eml"] = message("kw-spaced", encoded_word("业务联系"), headers, body)

    headers, body = multipart(
        "mixed",
        "----=_mixed_0002",
        [
            text_part(CLEAN_CN),
            attachment(
                'filename="price-list.txt"',
                'text/plain; charset=UTF-8; name="price-list.txt"',
                "价目表\n代开发票：2%\n咨询电话：138-0000-0000\n".encode(),
            ),
        ],
    )
    samples["kw-attachment-txt.eml"] = message(
        "kw-attachment-txt", encoded_word("价目表"), headers, body
    )

    docx_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    headers, body = multipart(
        "mixed",
        "----=_mixed_0003",
        [
            text_part(CLEAN_CN),
            attachment(
                'filename="notice.docx"',
                f'{docx_type}; name="notice.docx"',
                minimal_docx("本公司长期代开", "发票，欢迎咨询。"),
            ),
        ],
    )
    samples["kw-attachment-docx.eml"] = message(
        "kw-attachment-docx", encoded_word("通知"), headers, body
    )

    inner_headers, inner_body = single(text_part("老板好，代开发票找我，全国可查。\n"))
    inner = message(
        "kw-attached-message-inner",
        encoded_word("转发：发票"),
        inner_headers,
        inner_body,
        sender=f"{encoded_word('小王')} <xiaowang@example.net>",
    ).decode("ascii")
    headers, body = multipart(
        "mixed",
        "----=_mixed_0004",
        [
            text_part("请看下面转发的邮件。\n"),
            [
                "Content-Type: message/rfc822",
                'Content-Disposition: attachment; filename="forwarded.eml"',
                "",
                *inner.split("\r\n"),
            ],
        ],
    )
    samples["kw-attached-message.eml"] = message(
        "kw-attached-message", encoded_word("转发邮件"), headers, body
    )

    pharma = (
        "Hello friend,\n\nBest prices on cialis and other meds, no prescription needed.\n"
        "Discreet worldwide shipping. Order today and save 80%.\n\n"
        "Click here: http://pharmacy.example.net/\n"
    )
    headers, body = single(text_part(pharma, "us-ascii", "7bit"))
    samples["kw-pharma-en.eml"] = message(
        "kw-pharma-en",
        "Cheap meds - save 80% today",
        headers,
        pharma.splitlines(),
        sender='"Online Pharmacy" <deals@pharmacy.example.net>',
    )

    appointment = (
        "Dear Ms. Taylor,\n\n"
        "This is a reminder of your appointment with the specialist, Dr. Alan Reed,\n"
        "in the cardiology department on Thursday, 6 March 2025 at 10:15.\n"
        "Please arrive 15 minutes early and bring your referral letter.\n\n"
        "Kind regards,\nPatient Services, St. Example Hospital\n"
    )
    headers, body = single(text_part(appointment, "UTF-8", "quoted-printable"))
    samples["clean-specialist.eml"] = message(
        "clean-specialist",
        "Your appointment with the specialist on 6 March",
        headers,
        body,
        sender='"St. Example Hospital" <appointments@hospital.example.org>',
    )

    business = (
        "各位同事：\n\n"
        "本周五下午两点在三楼会议室召开第一季度经营分析会，请各部门准备季度报告。\n"
        "会议议程：\n"
        "1. 一季度销售与回款情况；\n"
        "2. 与华东客户的合同续签进展；\n"
        "3. 发票与报销流程的调整（财务部说明）。\n\n"
        "上次会议的会议纪要见附件，请提前阅读。\n\n"
        "行政部 张伟\n"
    )
    pdf = (
        b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
        b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
        b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"
    )
    quoted = urllib.parse.quote("会议纪要.pdf".encode())
    headers, body = multipart(
        "mixed",
        "----=_mixed_0005",
        [
            text_part(business),
            attachment(
                f"filename*=UTF-8''{quoted}",
                f"application/pdf; name*=UTF-8''{quoted}",
                pdf,
            ),
        ],
    )
    samples["clean-chinese-business.eml"] = message(
        "clean-chinese-business", encoded_word("关于召开一季度经营分析会的通知"), headers, body
    )
    return samples


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    for name, data in build().items():
        (out / name).write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
