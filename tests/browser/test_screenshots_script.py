"""scripts/screenshots.py runs: its own Guichet on a new database with the demo data, every screen in
Khmer and in English as PNG files, nothing logged as an error. Run as the script it is (a process of its
own: the app it starts would otherwise reconfigure this one's process-wide settings)."""

import asyncio
import re
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


SCREENS = re.findall(r'Screen\("([a-z-]+)"', (ROOT / "scripts" / "screenshots.py").read_text(encoding="utf-8"))


async def test_the_screenshots_script_photographs_a_screen_in_khmer_and_english(browser, tmp_path):
    """One screen, the one that takes the most machinery (a search, the eligibility grid, an application):
    the whole list takes minutes, too long for every test run; the committed PNGs are checked below."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "scripts/screenshots.py", "--out", str(tmp_path), "--only", "console-household", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode == 0, output.decode()
    taken = sorted(tmp_path.glob("*.png"))
    assert [path.name for path in taken] == ["console-household-en.png", "console-household-km.png"], output.decode()
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in taken)


def test_every_screen_of_the_script_is_in_docs_in_khmer_and_english():
    assert len(SCREENS) >= 10, SCREENS
    expected = sorted(f"{screen}-{language}.png" for screen in SCREENS for language in ("km", "en"))
    # The dashboard's screenshots (dashboard-*, office-report-*) come from its browser test, not this script.
    assert sorted(path.name for path in (ROOT / "docs" / "screenshots").glob("console-*.png")) == expected
