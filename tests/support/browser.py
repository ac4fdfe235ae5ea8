"""Debian's Chromium driven by Playwright for Python, with SwiftShader WebGL (no GPU needed).

Playwright's own browser download is not reachable here, so tests launch ``/usr/bin/chromium``
(``apt-get install chromium``; ``.ci/run`` installs it when missing). Tests that use it are
marked ``browser``: ``pytest -m "not browser"`` skips them on a machine without Chromium.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright

from pipeline.view.page import viewer_built

__all__ = ["CHROMIUM", "chromium_page"]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--use-angle=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]


def _require() -> str:
    if not viewer_built():
        if shutil.which("npm") is None:
            pytest.skip("npm is missing, so `make viewer` could not build the viewer")
        pytest.fail("the viewer is not built: run `make viewer` (or skip: -m 'not browser')")
    found = CHROMIUM if CHROMIUM.is_file() else shutil.which("chromium")
    if found is None:
        pytest.fail("no Chromium: `apt-get install chromium` (or skip: -m 'not browser')")
    return str(found)


@asynccontextmanager
async def chromium_page(width: int = 800, height: int = 450) -> AsyncIterator[Page]:
    """A fresh headless page of that viewport size (console messages are printed)."""
    executable = _require()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: print(f"console {m.type}: {m.text}"))
            page.on("pageerror", lambda e: print(f"page error: {e}"))
            yield page
        finally:
            await browser.close()
