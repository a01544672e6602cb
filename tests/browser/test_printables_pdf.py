"""The printables in Khmer and French (issue 15), printed to PDF by headless Chromium as an office prints
them: the receipt, the referral slip and the grievance acknowledgement, each in its language, drawn with the
Noto Sans Khmer that Guichet serves (embedded in the PDF), the Khmer text extracting back unchanged, and a
Khmer page's dates in Khmer with Khmer digits."""

import io
import re
from datetime import UTC, datetime

import pytest
from pypdf import PdfReader
from pypdf.generic import ContentStream, DictionaryObject

from app import console
from app.printables import FONT
from helpers import household_body, register
from test_applications import file
from test_cases import frozen, open_case
from test_grievances import lodge
from test_referrals import refer

pytestmark = pytest.mark.browser

KHMER_GIVEN, KHMER_FAMILY = "សុភា", "ម៉ៅ"  # a vowel, a subscript-free cluster and a shifter with its sign
KHMER_NAME = f"{KHMER_FAMILY} {KHMER_GIVEN}"
FILED = datetime(2026, 12, 1, 2, 5, tzinfo=UTC)  # 09:05 on 1 December 2026 in Phnom Penh


def fonts_of(reader: PdfReader) -> dict[str, bool]:
    """Each font the PDF uses: its name, and whether its glyphs are in the PDF. Chromium embeds a variable
    font (the shipped Noto Sans Khmer is one) as Type3 fonts, whose glyph outlines are the /CharProcs."""
    found = {}
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            descendants = [d.get_object() for d in font.get("/DescendantFonts", [])] or [font]
            for d in descendants:
                descriptor = d.get("/FontDescriptor")
                descriptor = descriptor.get_object() if descriptor is not None else {}
                name = str(descriptor.get("/FontName") or d.get("/BaseFont")).split("+")[-1]
                embedded = "/CharProcs" in d or any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
                found[name] = found.get(name, True) and embedded
    return found


def _unicode_map(font: DictionaryObject) -> dict[int, str]:
    cmap = font["/ToUnicode"].get_object().get_data().decode("latin-1")
    mapping = {}
    for block in re.findall(r"beginbfchar(.*?)endbfchar", cmap, re.S):
        for code, text in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            mapping[int(code, 16)] = bytes.fromhex(text).decode("utf-16-be")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", cmap, re.S):
        for low, high, text in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            first = bytes.fromhex(text).decode("utf-16-be")
            for i, code in enumerate(range(int(low, 16), int(high, 16) + 1)):
                mapping[code] = first[:-1] + chr(ord(first[-1]) + i)
    return mapping


def pdf_text(reader: PdfReader) -> str:
    """The PDF's text in logical order. Khmer glyphs are drawn in visual order (a vowel sign before its
    consonant, subscripts as separate glyphs); Chromium marks each such cluster with its /ActualText, the
    characters as typed. So: a cluster's ActualText, and every other glyph through its font's ToUnicode."""
    said = []
    for page in reader.pages:
        fonts = {name: font.get_object() for name, font in (page["/Resources"].get("/Font") or {}).items()}
        maps: dict[str, tuple[dict[int, str], int]] = {}
        font, spans = None, []
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"BDC":
                actual = operands[1].get("/ActualText") if isinstance(operands[1], DictionaryObject) else None
                spans.append(actual is not None)
                if actual is not None:
                    said.append(str(actual))
            elif operator == b"BMC":
                spans.append(False)
            elif operator == b"EMC" and spans:
                spans.pop()
            elif operator == b"Tf":
                font = operands[0]
                if font not in maps:
                    maps[font] = (_unicode_map(fonts[font]), 2 if fonts[font]["/Subtype"] == "/Type0" else 1)
            elif operator in (b"Tj", b"TJ") and not any(spans):
                mapping, width = maps[font]
                for part in (operands[0] if operator == b"TJ" else [operands[0]]):
                    if isinstance(part, (int, float)):
                        continue  # a TJ's kerning
                    codes = part if isinstance(part, bytes) else part.original_bytes  # pypdf decodes some strings
                    said += [mapping.get(int.from_bytes(codes[i:i + width], "big"), "") for i in range(0, len(codes), width)]
            elif operator in (b"Td", b"TD", b"Tm", b"T*", b"ET"):
                said.append(" ")
    return "".join(said)


async def printed(page, live_server, world, url: str, language: str) -> tuple[str, dict[str, bool], list[str]]:
    requested = []
    page.on("request", lambda request: requested.append(request.url))
    await page.set_extra_http_headers({**world.clerk_a.headers, "Accept": "text/html", "Accept-Language": language})
    response = await page.goto(url)
    assert response.status == 200 and response.headers["content-language"] == language
    assert await page.evaluate("document.documentElement.lang") == language
    await page.evaluate("document.fonts.ready")
    pdf = await page.pdf(format="A4", print_background=True)
    reader = PdfReader(io.BytesIO(pdf))
    return pdf_text(reader), fonts_of(reader), requested


@pytest.fixture
async def printables(client, world):
    """An application, a referral and a grievance of a household whose head is registered in Khmer."""
    body = household_body()
    body["members"][0] |= {"given_name": KHMER_GIVEN, "family_name": KHMER_FAMILY}
    household = await register(client, world.clerk_a, body)
    _, case = await open_case(client, world.clerk_a, household)
    with frozen(FILED):
        application = await file(client, world.clerk_a, case["id"], scheme_code="KH-HEF")
        referral = await refer(client, world.clerk_a, case["id"], agency="health_centre", service="consultation",
                               due_date="2026-12-15", reason="ពិនិត្យសុខភាព")
        grievance = await lodge(client, world.clerk_a, category="payment", channel="in_person",
                                complainant={"kind": "person", "person_id": household["members"][0]["id"]},
                                description="ប្រាក់ខែមីនាមិនបានមកដល់")
    return {"receipt": f"/api/v1/applications/{application['id']}/receipt",
            "slip": f"/api/v1/referrals/{referral['id']}/slip",
            "acknowledgement": f"/api/v1/grievances/{grievance['id']}/acknowledgement"}


KHMER_WORDS = {
    "receipt": ["បង្កាន់ដៃទទួលពាក្យស្នើសុំ", KHMER_NAME, "ថ្ងៃទី១ ខែធ្នូ ឆ្នាំ២០២៦, ០៩:០៥", "មូលនិធិសមធម៌សុខាភិបាល",
                "ក្រសួងសុខាភិបាល (អង្គភាពផ្ដល់សក្ខីកម្មលើការទូទាត់)",
                "បានដាក់ស្នើ", "អ្នកអាចប្ដឹងឧទ្ធរណ៍ប្រឆាំងនឹងការសម្រេចក្នុងរយៈពេល 90 ថ្ងៃ"],
    "slip": ["ប័ណ្ណបញ្ជូន", KHMER_NAME, "ថ្ងៃទី១ ខែធ្នូ ឆ្នាំ២០២៦", "ថ្ងៃទី១៥ ខែធ្នូ ឆ្នាំ២០២៦", "ពិនិត្យសុខភាព",
             "មណ្ឌលសុខភាព (ក្រសួងសុខាភិបាល)", "ការពិគ្រោះជំងឺ"],
    "acknowledgement": ["លិខិតបញ្ជាក់ការទទួលបណ្ដឹងតវ៉ា", KHMER_NAME, "ថ្ងៃទី១ ខែធ្នូ ឆ្នាំ២០២៦, ០៩:០៥", "ការទូទាត់ប្រាក់",
                        "ប្រាក់ខែមីនាមិនបានមកដល់", "ដោយផ្ទាល់"],
}


@pytest.mark.parametrize("kind", ["receipt", "slip", "acknowledgement"])
async def test_each_printable_in_khmer_as_pdf(page, live_server, world, printables, kind):
    text, fonts, requested = await printed(page, live_server, world, printables[kind], "km")
    # The font is the one Guichet serves, and it is embedded (not merely named) in the PDF.
    assert f"{live_server.url}{console.assets().prefix}/{FONT}" in requested
    assert fonts.get("NotoSansKhmer-Regular") is True, fonts
    # The Khmer text comes back out of the PDF as it went in: names as typed, the page's words, Khmer dates
    # (compared without spaces: a PDF places words, it does not always draw the space between them).
    flat = "".join(text.split())
    for words in KHMER_WORDS[kind]:
        assert "".join(words.split()) in flat, (words, text)
    # No date in English or in Latin digits (the references, SR-ACH-2026-A00001, keep theirs: they are codes).
    assert "December" not in flat and not re.search(r"[0-9]{2}:[0-9]{2}|2026-12", flat), text


async def test_a_printable_in_french_as_pdf(page, live_server, world, printables):
    text, fonts, _ = await printed(page, live_server, world, printables["receipt"], "fr")
    flat = "".join(text.split())
    for words in ("Récépissé de demande", "1er décembre 2026, 09:05", "Fonds d'équité en santé", "déposée", KHMER_NAME,
                  "Vous pouvez faire recours contre la décision dans les 90 jours"):
        assert "".join(words.split()) in flat, (words, text)
    assert fonts.get("NotoSansKhmer-Regular") is True, fonts  # the name, in Khmer
