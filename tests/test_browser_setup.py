"""Where Chromium is missing, the browser tests say so: `make test` skips them with the reason, and under
GUICHET_TEST_BROWSER=required (.ci/run) they fail instead. Run as a pytest of its own, with a PATH on which
no Chromium can be found."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BROWSER_TEST = "tests/browser/test_console_page.py::test_french_is_one_click_away_too"
pytestmark = pytest.mark.slow


def run_browser_test(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("GUICHET_TEST_POSTGRES_URL", "GUICHET_TEST_BROWSER")}
    environment.update(PATH=str(tmp_path), **env)  # an empty directory: no chromium on it
    # Only the plugin the browser fixtures need (pytest-asyncio): loading every installed one costs seconds.
    environment["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    command = [sys.executable, "-m", "pytest", BROWSER_TEST, "-p", "asyncio", "-p", "no:cacheprovider", "-q", "-rs"]
    return subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)


def test_without_chromium_the_browser_tests_are_skipped_saying_why(tmp_path):
    result = run_browser_test(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout
    assert "browser tests skipped: Chromium is not installed (Debian: apt-get install chromium)" in result.stdout


def test_when_required_a_missing_chromium_fails_the_run(tmp_path):
    result = run_browser_test(tmp_path, GUICHET_TEST_BROWSER="required")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "skipped" not in result.stdout
    assert "browser tests are required here (GUICHET_TEST_BROWSER=required): Chromium is not installed" in result.stdout
