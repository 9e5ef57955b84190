"""Fixtures for the browser tests: one JupyterLab server and one Chromium per test session."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lab_helpers import OPEN_PAGES, launch_chromium, open_page, start_lab_server
from page_checks import console_problems

ARTIFACTS = Path(__file__).resolve().parents[2] / ".test-artifacts"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, save a screenshot of every open page to .test-artifacts/ (git-ignored)."""
    report = yield
    if report.failed and call.when in ("setup", "call") and OPEN_PAGES:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", item.nodeid)
        for k, rec in enumerate(list(OPEN_PAGES)):
            try:
                rec.page.screenshot(path=str(ARTIFACTS / f"{name}-{k}.png"))
            except Exception:  # a closed page: nothing to save
                pass
    return report


@pytest.fixture(scope="session")
def lab_server(tmp_path_factory):
    try:
        server = start_lab_server(tmp_path_factory.mktemp("lab"))
    except RuntimeError as exc:
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        try:
            b = launch_chromium(p)
        except RuntimeError as exc:
            pytest.fail(str(exc))
        yield b
        b.close()


@pytest.fixture
def lab_page(browser, lab_server):
    """A fresh page (its own browser context) with its request log; the test fails if the page logged an error
    (other than those CONSOLE_ALLOWED lists, with why)."""
    context, rec = open_page(browser, lab_server)
    yield rec
    context.close()
    problems = console_problems([("error", text) for text in rec.console_errors])
    assert problems == [], f"the page logged errors: {problems}"
