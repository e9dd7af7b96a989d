"""A real browser for the tests of the web interface: Debian's headless chromium driven by Selenium
through chromedriver, and a node that serves it from a thread of its own.

Selenium's calls block. The node runs in a Trio loop on another thread, so the tests can be
plain functions that wait with WebDriverWait while the node serves on a real loopback port;
one node and one browser serve a whole test module.
"""

from __future__ import annotations

import os
import queue
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from quart import Blueprint
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from node.config import Config
from node.context import NodeContext

from .datasets import make_dataset, to_bytes
from .node import start_node

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="chromium and chromedriver are not installed (apt-get install chromium chromium-driver)",
)
#: The screen the interface must be readable on.
WINDOW = (1280, 800)
#: Where the screenshots of the pages go (a test artefact); a temporary folder when unset.
SCREENSHOTS_VARIABLE = "NODE_UI_SCREENSHOTS"
NODE_START_TIMEOUT = 30.0
# A gradient makes a preview that shows something (a flat image would look like a failure).
_PREVIEW_SIDE = 64


@contextmanager
def node_in_thread(config: Config, *, routes: Sequence[Blueprint] = ()) -> Iterator[NodeContext]:
    """A node serving from a Trio loop on a thread of its own until the block ends."""
    started: queue.Queue[NodeContext | BaseException] = queue.Queue()
    handles: dict[str, Any] = {}

    async def run() -> None:
        try:
            async with trio.open_nursery() as nursery:
                handles["token"] = trio.lowlevel.current_trio_token()
                handles["scope"] = nursery.cancel_scope
                started.put(await start_node(nursery, config, routes=routes))
        except BaseException as error:  # handed to the test's thread, which raises it
            started.put(error)
            raise

    thread = threading.Thread(target=trio.run, args=(run,), name="node under test", daemon=True)
    thread.start()
    context = started.get(timeout=NODE_START_TIMEOUT)
    if isinstance(context, BaseException):
        raise context
    try:
        yield context
    finally:
        trio.from_thread.run_sync(handles["scope"].cancel, trio_token=handles["token"])
        thread.join(NODE_START_TIMEOUT)


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """A Chrome WebDriver session on Debian's chromium, headless, at the size of a 1280×800 screen."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--no-first-run", "--disable-extensions", "--disable-background-networking",
                     f"--window-size={WINDOW[0]},{WINDOW[1]}"):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def screenshots_folder(default: Path) -> Path:
    folder = Path(os.environ.get(SCREENSHOTS_VARIABLE) or default)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def previewable_ct(**tags: Any) -> bytes:
    """A small CT instance whose pixels are a gradient, ``tags`` as in :func:`make_dataset`."""
    side = _PREVIEW_SIDE
    pixels = b"".join((row * side + column).to_bytes(2, "little") for row in range(side) for column in range(side))
    ds = make_dataset(pixels=pixels, **tags)
    ds.Rows, ds.Columns = side, side
    return to_bytes(ds)


def wait_for(driver: Any, css: str, timeout: float = 10.0) -> Any:
    """The element ``css`` names once it is on the page and shown."""
    return WebDriverWait(driver, timeout).until(
        expected_conditions.visibility_of_element_located((By.CSS_SELECTOR, css))
    )


def wait_until(driver: Any, condition: Any, timeout: float = 10.0, message: str = "") -> Any:
    """What ``condition(driver)`` gives once it is truthy (checked every 50 ms)."""
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition, message)


def attribute_is(css: str, name: str, value: str) -> Any:
    """A condition: the element ``css`` exists and its attribute ``name`` is ``value``."""

    def check(driver: Any) -> bool:
        try:
            return driver.find_element(By.CSS_SELECTOR, css).get_attribute(name) == value
        except (NoSuchElementException, StaleElementReferenceException):
            return False

    return check


def text_in(css: str, text: str) -> Any:
    """A condition: the element ``css`` exists and its text contains ``text``."""

    def check(driver: Any) -> bool:
        try:
            return text in driver.find_element(By.CSS_SELECTOR, css).text
        except (NoSuchElementException, StaleElementReferenceException):
            return False

    return check
