"""The web interface in a real browser (headless chromium): upload, browse, search, anonymize,
and the jobs dashboard's pause and cancel, against a node serving on a loopback port.

One node and one browser serve the module; each test makes the data it looks at (its own
patient names), so the tests do not depend on their order. Screenshots of the main pages go
to $NODE_UI_SCREENSHOTS (a temporary folder when unset).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.support import job_types
from tests.support.browser import (
    attribute_is,
    headless_chromium,
    needs_chromium,
    node_in_thread,
    previewable_ct,
    screenshots_folder,
    text_in,
    wait_for,
    wait_until,
)
from tests.support.node import node_config

pytestmark = needs_chromium

# How soon the dashboard must show a job's new state after a click on pause or cancel.
STATE_CHANGE_S = 1.0


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    config = node_config(tmp_path_factory.mktemp("ui-node"), Name="ui-test-node", ConcurrentJobs=2)
    with node_in_thread(config, routes=[job_types.blueprint]) as context:
        yield f"http://127.0.0.1:{context.ports['http']}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshots_folder(tmp_path_factory.mktemp("screenshots"))


@pytest.fixture
def rest(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def upload(rest: httpx.Client, **tags: Any) -> dict[str, Any]:
    answer = rest.post("/instances", content=previewable_ct(**tags))
    assert answer.status_code == 200, answer.text
    return answer.json()


def show(browser: Any, base_url: str, page: str, ready: str) -> Any:
    """Open the interface at ``page`` ("#/jobs") in a fresh document and wait for the element ``ready``.

    From another page of the interface, a new address that differs only after # would be a
    navigation inside the same document: ``ready`` could be found on the page being left."""
    browser.get("about:blank")
    browser.get(f"{base_url}/ui/{page}")
    return wait_for(browser, ready)


def test_the_root_leads_to_the_interface(browser: Any, base_url: str) -> None:
    browser.get(f"{base_url}/")
    wait_for(browser, "#studies-table")
    assert browser.current_url.startswith(f"{base_url}/ui/")
    assert wait_until(browser, text_in("#brand", "ui-test-node"))


def test_upload_a_file_through_the_page_and_see_its_study(
    browser: Any, base_url: str, tmp_path: Path, shots: Path
) -> None:
    dropped = tmp_path / "dropped.dcm"
    dropped.write_bytes(previewable_ct(patient_name="UPLOADED^BY^PAGE", patient_id="UI-UP-1"))
    show(browser, base_url, "#/upload", "#dropzone")
    browser.find_element(By.ID, "upload-files").send_keys(str(dropped))
    wait_until(browser, attribute_is("tr.upload-row", "data-outcome", "ok"), message="the upload did not succeed")
    assert wait_until(browser, attribute_is("[aria-label='Overall upload progress']", "aria-valuenow", "100"))
    assert "1 stored" in browser.find_element(By.CSS_SELECTOR, "tr.upload-row .result").text
    browser.save_screenshot(str(shots / "upload.png"))

    browser.find_element(By.LINK_TEXT, "open the study").click()
    wait_until(browser, text_in("#resource-title", "Study"))
    show(browser, base_url, "#/studies", "#studies-table")
    assert wait_until(browser, text_in("#studies-table", "UPLOADED^BY^PAGE"))
    browser.save_screenshot(str(shots / "studies.png"))


def test_open_a_study_and_read_a_tag(browser: Any, base_url: str, rest: httpx.Client, shots: Path) -> None:
    stored = upload(rest, patient_name="TAGS^READER", patient_id="UI-TAG-1", AccessionNumber="ACC-TAGS-7")
    show(browser, base_url, "#/studies?name=TAGS", "#studies-table")
    browser.find_element(By.LINK_TEXT, "TAGS^READER").click()
    wait_for(browser, "#series-table")
    assert "ACC-TAGS-7" in browser.find_element(By.CSS_SELECTOR, "dl.tags-summary").text
    browser.save_screenshot(str(shots / "study.png"))

    browser.find_element(By.CSS_SELECTOR, "#series-table tbody a").click()
    wait_for(browser, "#instances-table")
    browser.find_element(By.CSS_SELECTOR, "#instances-table tbody td:nth-child(2) a").click()
    wait_for(browser, "#tags-table")
    row = browser.find_element(By.XPATH, "//table[@id='tags-table']//tr[td[1][contains(., '0008,0050')]]")
    assert "AccessionNumber" in row.text and "ACC-TAGS-7" in row.text
    wait_until(
        browser, lambda d: d.execute_script("return document.getElementById('instance-preview').naturalWidth") > 0
    )
    assert stored["ID"] in browser.current_url
    browser.find_element(By.ID, "tag-filter").send_keys("PatientID")
    assert wait_until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#tags-table tbody tr")) == 1)
    browser.save_screenshot(str(shots / "instance-tags.png"))


def test_anonymization_progress_reaches_100(browser: Any, base_url: str, rest: httpx.Client, shots: Path) -> None:
    stored = upload(rest, patient_name="TO^ANONYMIZE", patient_id="UI-ANON-1")
    show(browser, base_url, f"#/study/{stored['ParentStudy']}", "#action-anonymize").click()
    wait_for(browser, "#anonymize-start").click()
    wait_for(browser, "#job-monitor")
    wait_until(browser, attribute_is("#job-monitor [role=progressbar]", "aria-valuenow", "100"), message="no 100%")
    assert wait_until(browser, text_in("#job-state", "Success"))
    browser.save_screenshot(str(shots / "anonymize.png"))
    wait_for(browser, "#job-result-link").click()
    assert wait_until(browser, text_in("#resource-title", "Study"))
    assert stored["ParentStudy"] not in browser.current_url


def test_pause_and_cancel_a_long_job_from_the_dashboard(
    browser: Any, base_url: str, rest: httpx.Client, shots: Path
) -> None:
    # Blocked on I/O at its first step: running until told otherwise. Two more fill the other
    # worker and wait in the queue.
    submitted = [
        rest.post("/test/jobs", json={"Steps": 2, "BlockAt": 0, "Asynchronous": True, "Label": f"ui{n}"}).json()["ID"]
        for n in range(3)
    ]
    try:
        long_job = f"#job-{submitted[0]}"
        show(browser, base_url, "#/jobs", long_job)
        wait_until(browser, attribute_is(long_job, "data-state", "Running"))
        assert wait_until(browser, text_in("#pending-queue", submitted[2][:8]))
        browser.save_screenshot(str(shots / "jobs.png"))

        browser.find_element(By.CSS_SELECTOR, f"{long_job} .job-pause").click()
        wait_until(browser, attribute_is(long_job, "data-state", "Paused"), STATE_CHANGE_S, "not paused in time")
        browser.find_element(By.CSS_SELECTOR, f"{long_job} .job-resume").click()
        wait_until(browser, lambda d: d.find_element(By.CSS_SELECTOR, long_job).get_attribute("data-state") != "Paused",
                   STATE_CHANGE_S, "not resumed in time")  # fmt: skip
        browser.find_element(By.CSS_SELECTOR, f"{long_job} .job-cancel").click()
        wait_until(browser, attribute_is(long_job, "data-state", "Failure"), STATE_CHANGE_S, "not canceled in time")
        assert "canceled" in browser.find_element(By.CSS_SELECTOR, f"{long_job} .error-cell").text.lower()
        assert browser.find_element(By.CSS_SELECTOR, f"{long_job} .job-resubmit").is_displayed()
    finally:
        for job in submitted:
            rest.post(f"/jobs/{job}/cancel")


def test_search_by_patient_name(browser: Any, base_url: str, rest: httpx.Client) -> None:
    upload(rest, patient_name="SEARCHED^ALPHA", patient_id="UI-S-1")
    upload(rest, patient_name="SEARCHED^BETA", patient_id="UI-S-2")
    show(browser, base_url, "#/studies", "#studies-table")
    # From the keyboard: "/" jumps to the search, Enter searches.
    browser.find_element(By.TAG_NAME, "body").send_keys("/")
    field = browser.switch_to.active_element
    assert field.get_attribute("id") == "search-name"
    field.send_keys("alpha", Keys.ENTER)  # any case: patient names match without it
    wait_until(browser, lambda d: "name=alpha" in d.current_url)
    assert wait_until(browser, text_in("#studies-table", "SEARCHED^ALPHA"))
    assert "SEARCHED^BETA" not in browser.find_element(By.ID, "studies-table").text
    assert browser.find_element(By.ID, "search-name").get_attribute("value") == "alpha"


def test_the_system_page_shows_counts_charts_and_remotes(
    browser: Any, base_url: str, rest: httpx.Client, shots: Path
) -> None:
    ports = rest.get("/system").json()
    rest.put("/modalities/itself", json={"AET": ports["DicomAet"], "Host": "127.0.0.1", "Port": ports["DicomPort"]})
    try:
        show(browser, base_url, "#/system", "#system-counts")
        wait_for(browser, "#charts .chart-box svg")
        browser.find_element(By.CSS_SELECTOR, "#modalities-table button.echo").click()
        assert wait_until(browser, text_in("#modalities-table .echo-result", "answers"))
        browser.save_screenshot(str(shots / "system.png"))
    finally:
        rest.delete("/modalities/itself")


def test_query_and_retrieve_from_a_modality(browser: Any, base_url: str, rest: httpx.Client, shots: Path) -> None:
    upload(rest, patient_name="QUERIED^REMOTELY", patient_id="UI-QR-1")
    ports = rest.get("/system").json()
    rest.put("/modalities/itself", json={"AET": ports["DicomAet"], "Host": "127.0.0.1", "Port": ports["DicomPort"]})
    try:
        show(browser, base_url, "#/query", "#qr-PatientName").send_keys("QUERIED*", Keys.ENTER)
        assert wait_until(browser, text_in("#qr-table", "QUERIED^REMOTELY"))
        browser.save_screenshot(str(shots / "query.png"))
    finally:
        rest.delete("/modalities/itself")


def test_the_interface_works_behind_basic_authentication(browser: Any, tmp_path: Path) -> None:
    config = node_config(
        tmp_path, RemoteAccessAllowed=True, AuthenticationEnabled=True, RegisteredUsers={"alice": "wonderland"}
    )
    with node_in_thread(config) as context:
        port = context.ports["http"]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=("alice", "wonderland")) as client:
            assert httpx.get(f"http://127.0.0.1:{port}/ui/").status_code == 401
            client.post("/instances", content=previewable_ct(patient_name="BEHIND^AUTH", patient_id="UI-AUTH-1"))
        browser.get(f"http://alice:wonderland@127.0.0.1:{port}/ui/#/studies")
        assert wait_until(browser, text_in("#studies-table", "BEHIND^AUTH"))
        wait_for(browser, "#studies-table a").click()
        assert wait_until(browser, text_in("#resource-title", "Study"))
