"""A real browser for the UI tests: Debian's chromium, headless, driven by Selenium through Debian's
chromedriver (never a downloaded one), with axe-core run on every page a flow visits."""

from __future__ import annotations

import base64
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from axe_selenium_python import Axe
from selenium import webdriver
from selenium.common.exceptions import (
    StaleElementReferenceException,
    WebDriverException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

SERIOUS = ("serious", "critical")
AXE_CORE = Path(__file__).parent / "axe" / "axe.min.js"  # (see axe/README.md)


def settled(check):
    """A wait's check that may read the page while it navigates: an element that left the document
    (chromedriver says "stale", or "does not belong to the document" mid-load) means "not yet"."""
    def attempt(driver):
        try:
            return check(driver)
        except StaleElementReferenceException:
            return False
        except WebDriverException as e:
            if "does not belong to the document" in (e.msg or ""):
                return False
            raise
    return attempt


def chromium() -> webdriver.Chrome:
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        raise RuntimeError("the UI tests need Debian's chromium and chromium-driver: "
                           "apt-get install -y chromium chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--disable-default-apps", "--disable-features=Translate,MediaRouter",
                f"--user-data-dir={tempfile.mkdtemp(prefix='ui-chromium-')}", "--window-size=1280,900"):
        options.add_argument(arg)
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver), options=options)


@dataclass
class Browser:
    """One person at the keyboard: visits pages, saves a screenshot of each, checks each with axe."""

    driver: webdriver.Chrome
    base: str
    shots: Path
    flow: str = "flow"
    seen: list[str] = field(default_factory=list)
    axe_results: dict[str, list[str]] = field(default_factory=dict)

    def start(self, flow: str) -> Browser:
        self.flow = flow
        (self.shots / flow).mkdir(parents=True, exist_ok=True)
        return self

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def visit(self, path: str, name: str) -> None:
        self.driver.get(self.url(path))
        self.page(name)

    def page(self, name: str) -> None:
        """The page now shown: wait for it, screenshot it, and run axe on it."""
        WebDriverWait(self.driver, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
        number = len(list((self.shots / self.flow).glob("*.png"))) + 1
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot",
                                           {"captureBeyondViewport": True, "fromSurface": True})
        (self.shots / self.flow / f"{number:02d}-{name}.png").write_bytes(base64.b64decode(shot["data"]))
        self.check_accessibility(name)
        self.seen.append(f"{self.flow}/{name}")

    def check_accessibility(self, name: str) -> None:
        axe = Axe(self.driver, script_url=str(AXE_CORE))
        axe.inject()
        results = axe.run(
            options='{"runOnly": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]}')
        bad = [v for v in results["violations"] if v["impact"] in SERIOUS]
        found = [f"{v['id']} ({v['impact']})" for v in results["violations"]]
        self.axe_results[f"{self.flow}/{name}"] = found
        with open(self.shots / "axe.txt", "a") as log:  # every page's verdict, for the reviewer
            log.write(f"{self.flow}/{name}: {', '.join(found) or 'no violations'}\n")
        assert not bad, f"axe on {self.driver.current_url} ({name}):\n" + axe.report(bad)

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self) -> str:
        return self.find("main").text

    def click(self, css: str) -> None:
        self.find(css).click()

    def link(self, text: str) -> None:
        self.driver.find_element(By.PARTIAL_LINK_TEXT, text).click()

    def fill(self, css: str, value: str) -> None:
        field_ = self.find(css)
        field_.clear()
        field_.send_keys(value)

    def wait_for(self, css: str, timeout: float = 10):
        return WebDriverWait(self.driver,
                             timeout).until(settled(EC.visibility_of_element_located((By.CSS_SELECTOR, css))))

    def wait_text(self, text: str, timeout: float = 10) -> None:
        WebDriverWait(self.driver, timeout).until(settled(lambda d: text in d.find_element(By.TAG_NAME, "body").text))

    def confirm_in_dialog(self, link_css: str, name: str, reason: str | None = None) -> None:
        """Click an action, confirm it in the dialog that opens (keyboard-focused), and land on the result."""
        self.click(link_css)
        dialog = self.wait_for("dialog#confirm-dialog[open] #confirm")
        self.page(name)
        if reason is not None:
            self.fill("dialog #reason", reason)
        dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(self.driver, 10).until(settled(lambda d: not d.find_elements(By.CSS_SELECTOR, "dialog[open]")))

    def sign_in(self, email: str, token: str, ok: bool = True) -> None:
        self.visit("/-/_/signin", "sign-in")
        self.fill("#email", email)
        self.fill("#token", token)
        self.click("form.stack button[type=submit]")
        if ok:
            self.wait_text(f"Signed in as {email}")
        else:
            self.wait_for(".alert.error")

    def sign_out(self) -> None:
        self.click("header form.inline button")
        self.wait_text("Signed out.")

    def http(self) -> httpx.Client:
        """An HTTP client holding this browser's cookies (for requests a page can't make)."""
        jar = httpx.Cookies()
        for c in self.driver.get_cookies():
            jar.set(c["name"], c["value"], path=c.get("path", "/"))
        return httpx.Client(base_url=self.base, cookies=jar, follow_redirects=False)

    def csrf(self) -> str:
        return re.search(r'name="csrf" value="([^"]+)"', self.driver.page_source).group(1)
