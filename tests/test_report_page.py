"""report.html as a lead sees it: rendered in a real headless Chromium (Debian's chromium and chromium-driver, driven
by Selenium) for a run that went live and one that rolled back, both from the recorded stream of real runs
(tests/recorded/). What must be visible on the first screen is checked there; a screenshot of each page is saved in
the test's tmp folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import golive.shared.commands  # noqa: F401  (registers every message type, as a service does)
from golive.services.coordinator.artifacts import build_artifacts, write_artifacts
from golive.shared.envelope import parse_envelope

RECORDED = Path(__file__).parent / "recorded" / "events-v1.jsonl"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1280,900"]
RED, GREEN = "rgba(201, 42, 42, 1)", "rgba(43, 138, 62, 1)"


def installed(*names: str) -> str | None:
    return next((found for name in names if (found := shutil.which(name) or shutil.which(name, path="/usr/bin:/usr/lib/chromium"))),
                None)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, driver = installed("chromium", "chromium-browser"), installed("chromedriver")
    if chromium is None or driver is None:
        pytest.fail("report.html is checked in a real browser, and Chromium or its driver is missing: "
                    "`apt-get install chromium chromium-driver` (Debian, Ubuntu; `make test` installs them when run "
                    "as root)")
    options = Options()
    options.binary_location = chromium
    for argument in CHROMIUM_ARGS:
        options.add_argument(argument)
    session = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    yield session
    session.quit()


def page_of(run_id: str, folder: Path) -> Path:
    events = [parse_envelope(json.dumps(body).encode()) for line in RECORDED.read_text().splitlines()
              if (body := json.loads(line)["body"])["runid"] == run_id]
    write_artifacts(build_artifacts(events), folder)
    return folder / "report.html"


def opened(browser, page: Path, screenshot: Path):
    from selenium.webdriver.common.by import By

    browser.get(page.as_uri())
    browser.save_screenshot(str(screenshot))
    assert screenshot.read_bytes().startswith(b"\x89PNG")
    return lambda css: browser.find_element(By.CSS_SELECTOR, css)


def on_first_screen(browser, element) -> bool:
    """Shown without scrolling: inside the browser's viewport as it opened the page."""
    height = browser.execute_script("return window.innerHeight")
    return element.is_displayed() and element.location["y"] + element.size["height"] <= height


def images_loaded(browser, css: str) -> list[bool]:
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(i => i.complete && i.naturalWidth > 0)", css)


def test_a_rolled_back_run_reads_rolled_back_at_first_glance_with_its_reason_and_stages(browser, tmp_path):
    find = opened(browser, page_of("run-rec-rollback", tmp_path), tmp_path / "report-rolled-back.png")

    pill, reason, stages = find("#status"), find("#reason"), find("#stages")
    assert pill.text == "ROLLED BACK" and pill.value_of_css_property("background-color") == RED
    assert reason.text == "stage 2 (50%) failed: slow_query p95 31.98 ms > 20 ms in 2 consecutive windows"
    assert stages.text.replace("\n", " ") == "10% ✓ → 50% ✗ → 100% ·"
    assert "breach to rollback" in find("#breach").text
    assert all(on_first_screen(browser, e) for e in (pill, reason, stages)), "the outcome, why and the stages: on the first screen"
    assert images_loaded(browser, ".badges img") == [True] * 4 and images_loaded(browser, "img.chart") == [True]
    first_check = find("#checks tr:nth-child(2)")
    assert "stage 2 (50%)" in first_check.text and "FAIL" in first_check.text, "the failing checks come first"
    assert not find("#timeline").get_attribute("open")  # the timeline is there, last, folded


def test_a_run_that_went_live_reads_live_in_green_with_every_stage_passed(browser, tmp_path):
    find = opened(browser, page_of("run-rec-ok", tmp_path), tmp_path / "report-live.png")

    pill = find("#status")
    assert pill.text == "LIVE" and pill.value_of_css_property("background-color") == GREEN
    assert find("#reason").text == "every phase passed"
    assert find("#stages").text.replace("\n", " ") == "10% ✓ → 50% ✓ → 100% ✓"
    assert on_first_screen(browser, pill)
    assert "FAIL" not in find("#checks").text
    assert images_loaded(browser, ".badges img") == [True] * 4
