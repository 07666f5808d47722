"""The pages in a real browser: Debian's headless Chromium driven by Selenium (no downloaded browsers).

Signs in, finds an employee, opens every screen and saves a screenshot of each under
test-output/screenshots/. Skipped, saying why, when chromium or chromedriver is not installed
(`apt-get install chromium chromium-driver`; .ci/run installs them)."""

from __future__ import annotations

import base64
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from esr.web import accounts
from esr.web.app import create_app
from esr.web.db import Database
from esr.web.roles import Role
from esr.web.settings import WebSettings
from tests.integration.web.seed import PASSWORD, RX1

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOTS = Path(__file__).resolve().parents[3] / "test-output" / "screenshots"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="headless browser tests need Debian's chromium and chromium-driver (apt-get install chromium "
        "chromium-driver)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def server(fresh_url: str) -> Iterator[str]:
    db = Database(fresh_url, min_size=1, max_size=1)
    db.open()
    try:
        accounts.create_user(
            db, "demo", PASSWORD, display_name="Rhian Morgan",
            grants=[(Role.VIEWER, None), (Role.IMPORTS, None), (Role.TAILORING, None), (Role.USER_ADMIN, None)],
        )
    finally:
        db.close()
    port = _free_port()
    config = uvicorn.Config(
        create_app(WebSettings(database_url=fresh_url)), host="127.0.0.1", port=port, log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the web server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1366,900",
                "--force-device-scale-factor=1", "--lang=en-GB"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class Pages:
    def __init__(self, driver: Any, base: str) -> None:
        self.driver = driver
        self.base = base
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)

    def text(self) -> str:
        from selenium.webdriver.common.by import By

        body: str = self.driver.find_element(By.TAG_NAME, "body").text
        return body

    def shot(self, name: str) -> Path:
        """A full-page screenshot (Chrome DevTools: the viewport stretched to the page's height)."""
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        height = max(700, min(int(metrics["cssContentSize"]["height"]), 5000))
        self.driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1366, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        try:
            shot = self.driver.execute_cdp_cmd(
                "Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}
            )
        finally:
            self.driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def click(self, by: str, value: str) -> None:
        """Clicks something that loads a page, and waits until the new page has replaced the old one."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support import expected_conditions
        from selenium.webdriver.support.wait import WebDriverWait

        old = self.driver.find_element("tag name", "html")
        self.driver.find_element(by, value).click()

        def replaced(driver: Any) -> bool:
            # Chromium may answer "Node with given id does not belong to the document" instead of a stale
            # element while the old page is torn down: that too means it has been replaced.
            try:
                return bool(expected_conditions.staleness_of(old)(driver))
            except WebDriverException:
                return True

        WebDriverWait(self.driver, 15).until(replaced)

    def click_link(self, text: str) -> None:
        self.click("link text", text)

    def login(self, username: str) -> None:
        from selenium.webdriver.common.by import By

        self.open("/login")
        self.driver.find_element(By.ID, "username").send_keys(username)
        self.driver.find_element(By.ID, "password").send_keys(PASSWORD)
        self.click(By.ID, "sign-in")

    def console_errors(self) -> list[str]:
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_every_screen_in_chromium(server: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    pages = Pages(browser, server)
    pages.open("/employees")
    assert browser.current_url.startswith(server + "/login")
    pages.shot("01-login")

    pages.login("demo")
    assert browser.current_url.endswith("/employees"), pages.text()
    assert "Rhian Morgan" in pages.text()

    # find an employee
    box = browser.find_element(By.ID, "q")
    box.send_keys("sian evans")
    pages.click(By.ID, "search")
    results = browser.find_element(By.ID, "results").text
    assert "Evans-Price, Siân" in results
    assert "QQ123456C" in results  # Imports/Exports may see NI numbers
    pages.shot("02-employee-search")

    pages.click_link("Evans-Price, Siân")
    text = pages.text()
    assert "Dr Siân Evans-Price" in text
    assert "20000011-2" in text
    assert "primary" in text.lower()
    assert "secondary" in text.lower()
    assert "Tomasz Nowak" in text
    assert "Band 6" in text
    assert "Ward 7 Cardiology" in text
    cards = browser.find_elements(By.CSS_SELECTOR, ".assignments .assignment")
    assert len(cards) == 2
    assert cards[0].location["y"] == cards[1].location["y"], "secondary assignment is beside the primary"
    pages.shot("03-employee-work")

    pages.click_link("Work & Home Addresses")
    text = pages.text()
    assert "12 Oak Lane" in text
    assert "Northfield General Hospital" in text
    assert "Nurse Bank Office" in text
    pages.shot("04-employee-addresses")

    pages.click_link("Vehicles")
    text = pages.text()
    assert "NF21 KXD" in text
    assert "LE70 EVN" in text
    assert "1,596" in text
    pages.shot("05-vehicles-esr-details")

    pages.click_link("NHS Mileage")
    text = pages.text()
    assert "STANDARD RATE" in text
    assert "£0.56" in text
    pages.shot("06-vehicles-nhs-mileage")

    pages.click_link("Change history")
    text = pages.text()
    assert "SURNAME_CHANGED" in text
    assert "Evans-Price" in text
    pages.shot("07-change-history")

    pages.click_link("Imports")
    text = pages.text()
    assert "GO_RX1_EXP_GOC_20260107_00000004.DAT" in text
    assert "WRONG_SEQUENCE" in text
    pages.shot("08-imports")
    pages.click_link("GO_RX1_EXP_GOC_20260106_00000002.DAT")
    text = pages.text()
    assert "field count 43, expected 44" in text
    assert "quarantined" in text.lower()
    pages.shot("09-import-file")

    pages.click_link("Tailoring")
    assert "Northfield Teaching Hospitals NHS Foundation Trust" in pages.text()
    pages.shot("10-tailoring")
    pages.click_link(RX1)
    assert "REGULAR USER" in pages.text()
    pages.shot("11-tailoring-trust")

    pages.click_link("User Management")
    assert "imports_rx1" in pages.text()
    pages.shot("12-user-management")
    pages.click_link("imports_rx1")
    browser.find_element(By.CSS_SELECTOR, "select[name=role]").send_keys("Viewer")
    pages.click(By.CSS_SELECTOR, "form.row button[type=submit]")
    assert "Role granted." in pages.text(), browser.current_url
    assert "Viewer" in browser.find_element(By.ID, "grants").text
    pages.shot("13-user")

    pages.click_link("Rhian Morgan")
    browser.find_element(By.NAME, "name").send_keys("payroll-sync")
    pages.click(By.CSS_SELECTOR, "form.row button[type=submit]")
    assert browser.find_element(By.ID, "new-token").text.startswith("esr_")
    pages.shot("14-account-token")

    assert not pages.console_errors(), pages.console_errors()

    pages.click(By.CSS_SELECTOR, "form.inline button")  # sign out
    assert browser.current_url.endswith("/login")


def test_viewer_sees_masked_identifiers_and_hostile_names_stay_text(server: str, browser: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    pages = Pages(browser, server)
    pages.login("viewer")
    pages.open("/employees?q=&vpd=")
    results = browser.find_element(By.ID, "results").text
    assert "QQ123456C" not in results
    assert "••••••••" in results
    assert "<script>alert('x')</script>" in results  # shown as text, not run
    with pytest.raises(NoAlertPresentException):
        _ = browser.switch_to.alert.text
    nav = browser.find_element(By.CSS_SELECTOR, "nav.mainnav").text
    assert "Employees" in nav
    assert "Imports" not in nav
    assert "User Management" not in nav
    pages.shot("15-viewer-search-masked")

    assert not pages.console_errors(), pages.console_errors()
    pages.open("/imports")
    assert "Not allowed" in pages.text()
