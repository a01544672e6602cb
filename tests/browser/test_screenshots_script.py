"""scripts/screenshots.py runs: its own Guichet on a new database with the demo data, every screen in
Khmer and in English as PNG files, nothing logged as an error. Run as the script it is (a process of its
own: the app it starts would otherwise reconfigure this one's process-wide settings)."""

import asyncio
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[2]


async def test_the_screenshots_script_photographs_every_screen_in_khmer_and_english(browser, tmp_path):
    process = await asyncio.create_subprocess_exec(
        sys.executable, "scripts/screenshots.py", "--out", str(tmp_path), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    output, _ = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode == 0, output.decode()
    taken = sorted(tmp_path.glob("*.png"))
    screens = ["sign-in", "search", "register-place", "register-members", "register-consent", "register-review",
               "household", "receipt", "queue", "audit"]
    expected = sorted(f"console-{screen}-{language}.png" for screen in screens for language in ("km", "en"))
    assert [path.name for path in taken] == expected, output.decode()
    assert all(path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for path in taken)
