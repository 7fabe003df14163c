"""The web UI of `shmq management` in a real browser: Debian's chromium,
headless, driven by Selenium through /usr/bin/chromedriver (Selenium Manager
never runs: nothing is downloaded).

One server over a fresh namespace with ~2000 queues, a live producer and a
slow consumer (`shmq publish` / `shmq consume` processes, so the figures
move), an exchange with a binding, and two shovels (one running shm to shm,
one never started, its URI holding a password). The tests log in through
the login form, click through every page and check what they show against
what the processes did and what the API answers: counts that change, one
page of rows out of 2000 with filter and pagination, a message got through
the UI showing its headers, a message published through the UI landing in
its queue (checked through the API), purge emptying and delete removing a
queue, and a wrong password refused with an error.

With SHMQ_UPDATE_SCREENSHOTS=1 each page is saved to docs/screenshots/.
Skipped, saying why, when chromium, chromedriver or selenium are missing
(scripts/test.sh installs them).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

import shmq

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"
UPDATE_SCREENSHOTS = os.environ.get("SHMQ_UPDATE_SCREENSHOTS") == "1"
BULK = 2000  # queues beside the test's own
WAIT = 15  # seconds: the bound on any one wait

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException, WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select
except ImportError:  # pragma: no cover - the skip below says so
    webdriver = None

pytestmark = [
    pytest.mark.skipif(webdriver is None, reason="selenium is not installed (pip install selenium)"),
    pytest.mark.skipif(not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
                       reason=f"{CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"),
]


# ---------------------------------------------------------------- helpers

def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Polls `check` until it returns something truthy; elements replaced
    by a refresh meanwhile are looked up again."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = check()
            if last:
                return last
        except (StaleElementReferenceException, NoSuchElementException) as e:
            last = e
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what} (last: {last!r})", pytrace=False)
        time.sleep(0.1)


class Api:
    """The management API, as the test's own witness."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.auth = "Basic " + base64.b64encode(b"guest:guest").decode()

    def request(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": self.auth, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=WAIT) as response:
            text = response.read()
        return json.loads(text) if text else None

    def status(self, path: str) -> int:
        try:
            self.request("GET", path)
            return 200
        except urllib.error.HTTPError as e:
            return e.code


class Ui:
    """Everything the tests share: the server, its processes, the browser."""

    def __init__(self, base: str, vhost: str, driver: Any, consumer_pid: int) -> None:
        self.base = base
        self.vhost = vhost
        self.driver = driver
        self.api = Api(base)
        self.consumer_pid = consumer_pid

    def find(self, css: str) -> Any:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> List[Any]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def type_into(self, css: str, text: str) -> None:
        """Replaces an input's text by typing, as a user does (Selenium's
        clear() fires no input event)."""
        field = self.find(css)
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.BACKSPACE)
        if text:
            field.send_keys(text)

    def text(self, css: str) -> str:
        """An element's rendered text, found and read in one script call: a
        refresh that replaces the element between a find and a read would
        make the read stale."""
        found = self.driver.execute_script(
            "const e = document.querySelector(arguments[0]);"
            " if (e === null) return null;"
            # As Selenium's .text: an element that is not rendered shows nothing.
            " return e.getClientRects().length === 0 ? '' : e.innerText.trim()",
            css)
        if found is None:
            raise NoSuchElementException(f"no element matches {css}")
        return found

    def click(self, css: str) -> None:
        """Clicks an element, looked up again if a refresh replaced it
        between the find and the click."""
        def attempt() -> bool:
            self.find(css).click()
            return True
        wait_for(attempt, f"a click on {css}")

    def visible(self, css: str) -> bool:
        """Whether the first match is displayed, found and checked in one
        script call (see text)."""
        return bool(self.driver.execute_script(
            "const e = document.querySelector(arguments[0]);"
            " return e !== null && e.getClientRects().length > 0"
            " && getComputedStyle(e).visibility !== 'hidden'",
            css))

    def tab(self, name: str) -> None:
        """Clicks a tab of the navigation bar and waits for its page."""
        self.click(f'#tabs a[data-tab="{name}"]')
        wait_for(lambda: self.text("main h1") == name.capitalize(), f"the {name} page")

    def column(self, table: str, index: int) -> List[str]:
        """The text of one column of a table's rows (index from 1), read in
        one go (a refresh may replace the rows between two reads)."""
        return self.driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map((td) => td.innerText.trim())",
            f"#{table} tbody tr td:nth-child({index})")

    def login(self, user: str = "guest", password: str = "guest") -> None:
        self.driver.get(self.base + "/")
        self.driver.execute_script("sessionStorage.clear()")
        self.driver.get(self.base + "/")
        wait_for(lambda: self.visible("#login-form"), "the login form")
        self.find("#login-username").send_keys(user)
        self.find("#login-password").send_keys(password)
        self.click("#login-submit")

    def accept_confirm(self) -> None:
        alert = wait_for(lambda: self._alert(), "the confirm dialog")
        alert.accept()

    def _alert(self) -> Any:
        try:
            return self.driver.switch_to.alert
        except WebDriverException:
            return None

    def screenshot(self, name: str) -> None:
        """docs/screenshots/NAME.png, the whole page, when asked for."""
        if not UPDATE_SCREENSHOTS:
            return
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.execute_script("window.scrollTo(0, 0)")
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1400, max(900, min(int(height) + 20, 2600)))
        time.sleep(0.3)  # the charts redraw at the new size on the next poll; wait for layout
        self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        self.driver.set_window_size(1400, 900)


# ---------------------------------------------------------------- fixtures

def start(args: List[str]) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def ui(shmq_bin: str) -> Iterator[Ui]:
    namespace = f"/dev/shm/shmq-pytest-ui-{uuid.uuid4().hex[:12]}"
    processes: List[subprocess.Popen] = []
    driver = None
    profile = f"/tmp/shmq-ui-chromium-{uuid.uuid4().hex[:12]}"
    try:
        ns = shmq.Namespace(namespace)
        for i in range(BULK):
            ns.declare_queue(f"bulk-{i:04d}", capacity_bytes=4096)
        for name in ("tasks", "orders", "audit", "inbox", "outbox"):
            ns.declare_queue(name)
        ns.declare_exchange("events", "topic")
        ns.bind("audit", "events", "order.#")
        cli = [shmq_bin, "--namespace", namespace]
        subprocess.run(cli + ["publish", "orders", "order {i}", "--count", "5", "--header", "customer=c-42",
                              "--content-type", "text/plain"], check=True, capture_output=True, timeout=WAIT)
        subprocess.run(cli + ["publish", "inbox", "parcel {i}", "--count", "10"], check=True, capture_output=True, timeout=WAIT)
        for name, src, dest in [("mover", f"shm://{namespace}", f"shm://{namespace}"),
                                ("to-rabbit", f"shm://{namespace}", "amqp://shovel:s3cret@127.0.0.1:1/%2f")]:
            subprocess.run(cli + ["shovel", "declare", name, "--src-uri", src, "--src-queue", "inbox" if name == "mover" else "audit",
                                  "--dest-uri", dest, "--dest-queue", "outbox" if name == "mover" else "copy"],
                           check=True, capture_output=True, timeout=WAIT)
        # Live traffic: 50 messages/s in, about 20/s worked off by a slow consumer.
        processes.append(start(cli + ["publish", "tasks", "task {i}", "--count", "1000000", "--interval-ms", "20"]))
        consumer = start(cli + ["consume", "tasks", "--manual-ack", "--prefetch", "10", "--work-ms", "50", "--quiet"])
        processes.append(consumer)
        processes.append(start(cli + ["shovel", "run", "mover"]))
        server = subprocess.Popen(cli + ["management", "--port", "0", "--sample-interval", "1"], stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        processes.append(server)
        line = server.stdout.readline()
        try:
            port = int(line.split("http://127.0.0.1:")[1].split()[0])
        except (IndexError, ValueError):
            pytest.fail(f"shmq management printed no address: {line!r}", pytrace=False)
        base = f"http://127.0.0.1:{port}"

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,900", "--hide-scrollbars",
                    f"--user-data-dir={profile}"]:
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(WAIT)
        yield Ui(base, namespace.rsplit("/", 1)[-1], driver, consumer.pid)
    finally:
        if driver is not None:
            driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        for process in processes:
            process.kill()
            process.wait()
        shutil.rmtree(namespace, ignore_errors=True)


# ---------------------------------------------------------------- tests

def test_a_wrong_password_is_refused_with_an_error(ui: Ui) -> None:
    ui.login("guest", "not-the-password")
    error = wait_for(lambda: ui.visible("#login-error") and ui.text("#login-error"), "the login error")
    assert error == "Login failed"
    assert not ui.visible("#app"), "the app must stay hidden"
    assert ui.driver.execute_script("return sessionStorage.getItem('shmq-auth')") is None
    ui.screenshot("login")


def test_overview_shows_totals_that_move(ui: Ui) -> None:
    ui.login()
    wait_for(lambda: ui.visible("#app") and ui.text("main h1") == "Overview", "the overview after login")
    assert ui.text("#top-user") == "guest"
    Select(ui.find("#refresh-select")).select_by_value("2")
    queues = wait_for(lambda: ui.text("#totals-queues b"), "the queue count")
    assert queues == f"{BULK + 5:,}"
    assert ui.text("#totals-consumers b") == "2"  # the consume process and the running shovel
    first = int(ui.text("#totals-messages b").replace(",", ""))
    # The producer outruns the consumer: the backlog grows between polls.
    later = wait_for(lambda: (n := int(ui.text("#totals-messages b").replace(",", ""))) > first and n, "the total to change")
    api_total = ui.api.request("GET", "/api/overview")["queue_totals"]["messages"]
    assert api_total >= later > first
    # The rates chart's legend shows the publish rate of the live producer (~50/s).
    rate = wait_for(lambda: (t := ui.text('.legend [data-series="publish"] b')) not in ("-", "0.0/s") and t, "a publish rate")
    assert 10 <= float(rate.rstrip("/s").replace(",", "")) <= 200, rate
    assert ui.find_all("canvas") and ui.driver.execute_script(
        "const c = document.querySelector('canvas'); return c.width > 0 && c.getContext('2d').getImageData(0, 0, c.width, c.height)"
        ".data.some((v, i) => i % 4 === 3 && v > 0)"), "the chart drew nothing"
    assert ui.vhost in ui.column("vhosts-table", 1)
    time.sleep(2.5)  # a few samples on the charts for the screenshot
    ui.screenshot("overview")


def test_queues_page_filters_pages_and_sorts_2000_queues(ui: Ui) -> None:
    ui.tab("queues")
    names = wait_for(lambda: ui.column("queues-table", 2), "the queue rows")
    assert len(names) == 100, "one page of rows, not all of them"
    assert names[:2] == ["audit", "bulk-0000"], names[:3]
    assert ui.text("#queues-page") == f"Page 1 of {(BULK + 5 + 99) // 100}"

    ui.find("#queues-filter").send_keys("bulk-1")
    wait_for(lambda: ui.text("#queues-page") == "Page 1 of 10", "10 pages of bulk-1*")
    assert ui.text("#queues-page-info") == f"Showing 100 of {BULK + 5:,} queues (1,000 match the filter)"
    assert ui.column("queues-table", 2)[0] == "bulk-1000"
    ui.click("#queues .pager .next")
    wait_for(lambda: ui.column("queues-table", 2)[0] == "bulk-1100", "page 2")
    assert ui.text("#queues-page") == "Page 2 of 10"
    ui.click("#queues .pager .last")
    wait_for(lambda: ui.column("queues-table", 2)[-1] == "bulk-1999", "the last page")
    Select(ui.find("#queues-page-size")).select_by_value("500")
    wait_for(lambda: len(ui.column("queues-table", 2)) == 500, "500 rows per page")
    assert ui.text("#queues-page") == "Page 1 of 2"

    ui.type_into("#queues-filter", "nothing-is-called-this")
    wait_for(lambda: ui.text("#queues-table tbody td") == "Nothing matches the filter.", "an empty result")
    ui.type_into("#queues-filter", "ox")
    wait_for(lambda: ui.column("queues-table", 2) == ["inbox", "outbox"], "the filtered queues")
    ui.type_into("#queues-filter", "")
    Select(ui.find("#queues-page-size")).select_by_value("20")

    # Sorted by total messages, largest first: the producer's backlog leads.
    ui.click('#queues-table th[data-sort="messages"]')
    wait_for(lambda: ui.column("queues-table", 2)[:1] == ["tasks"], "tasks first by messages")
    totals = [int(t.replace(",", "")) for t in ui.column("queues-table", 9)]
    assert totals == sorted(totals, reverse=True), totals
    ui.screenshot("queues")
    ui.click('#queues-table th[data-sort="name"]')
    wait_for(lambda: ui.column("queues-table", 2)[:1] == ["audit"], "sorted by name again")


def open_queue(ui: Ui, name: str) -> None:
    ui.driver.get(f"{ui.base}/#/queues/{ui.vhost}/{name}")
    wait_for(lambda: ui.text("#queue-name") == name and ui.text("#queue-messages") != "", f"queue {name}'s page")


def test_queue_page_shows_consumers_and_gets_messages_with_their_headers(ui: Ui) -> None:
    open_queue(ui, "tasks")
    process = wait_for(lambda: ui.column("consumers-table", 2), "the consumer row")
    assert process == [f"pid {ui.consumer_pid}"]
    assert ui.column("consumers-table", 3) == ["10"]  # prefetch

    open_queue(ui, "orders")
    assert ui.text("#queue-ready") == "5"
    assert ui.column("queue-bindings-table", 1) == ["(AMQP default)"]
    Select(ui.find("#get-ackmode")).select_by_value("ack_requeue_true")
    ui.type_into("#get-count", "2")
    ui.click("#get-submit")
    messages = wait_for(lambda: ui.find_all("#get-results .message"), "the messages got")
    assert len(messages) == 2
    first = messages[0]
    assert first.find_element(By.CSS_SELECTOR, "pre.payload").text == "order 0"
    headers = first.find_element(By.CSS_SELECTOR, ".prop-headers").text
    assert "customer" in headers and "c-42" in headers, headers
    assert first.find_element(By.CSS_SELECTOR, ".prop-content_type").text == "text/plain"
    # Requeued: still all there, as the API says.
    assert ui.api.request("GET", "/api/queues/%2F/orders")["messages_ready"] == 5
    ui.screenshot("queue")


def test_publish_through_the_ui_lands_in_the_queue(ui: Ui) -> None:
    open_queue(ui, "orders")
    ui.find("#publish-headers .kv-row:nth-child(1) .key").send_keys("trace-id")
    ui.find("#publish-headers .kv-row:nth-child(1) .value").send_keys("abc-123")
    # Using a row adds the next one, as in RabbitMQ's form.
    ui.find("#publish-headers .kv-row:nth-child(2) .key").send_keys("attempt")
    ui.find("#publish-headers .kv-row:nth-child(2) .value").send_keys("3")
    Select(ui.find("#publish-headers .kv-row:nth-child(2) .type")).select_by_value("number")
    ui.find("#publish-payload").send_keys("hello from the browser")
    ui.click("#publish-submit")
    assert wait_for(lambda: ui.text("#publish-result"), "the publish result") == "Message published."
    assert ui.api.request("GET", "/api/queues/%2F/orders")["messages_ready"] == 6
    # The API gets it back with the headers the form gave (the number as a number).
    got = ui.api.request("POST", "/api/queues/%2F/orders/get", {"count": 6, "ackmode": "ack_requeue_true", "encoding": "auto"})
    mine = [m for m in got if m["payload"] == "hello from the browser"]
    assert len(mine) == 1
    assert mine[0]["properties"]["headers"] == {"trace-id": "abc-123", "attempt": 3}
    assert mine[0]["properties"]["delivery_mode"] == 1


def test_purge_empties_and_delete_removes_a_queue(ui: Ui) -> None:
    open_queue(ui, "orders")
    ui.click("#purge-button")
    ui.accept_confirm()
    wait_for(lambda: ui.text("#queue-action-result") == "Queue orders purged.", "the purge")
    assert ui.api.request("GET", "/api/queues/%2F/orders")["messages"] == 0
    wait_for(lambda: ui.text("#queue-ready") == "0", "the page to show 0 ready")
    ui.click("#delete-button")
    ui.accept_confirm()
    wait_for(lambda: ui.text("main h1") == "Queues", "the queue list after delete")
    assert ui.api.status("/api/queues/%2F/orders") == 404
    ui.find("#queues-filter").send_keys("orders")
    wait_for(lambda: ui.text("#queues-table tbody td") == "Nothing matches the filter.", "orders gone from the list")
    ui.type_into("#queues-filter", "")


def test_exchanges_page_and_publish_through_an_exchange(ui: Ui) -> None:
    ui.tab("exchanges")
    names = wait_for(lambda: ui.column("exchanges-table", 2), "the exchange rows")
    assert names[0] == "(AMQP default)" and "events" in names and "amq.topic" in names, names
    types = dict(zip(names, ui.column("exchanges-table", 3)))
    assert types["events"] == "topic"
    wait_for(lambda: (ui.driver.find_element(By.LINK_TEXT, "events").click(), True)[1], "a click on events")
    wait_for(lambda: ui.text("#exchange-name") == "events", "the exchange page")
    wait_for(lambda: ui.column("source-bindings-table", 1) == ["audit"], "the binding to audit")
    assert ui.column("source-bindings-table", 2) == ["order.#"]
    ui.find("#publish-routing-key").send_keys("order.created")
    ui.find("#publish-payload").send_keys('{"order": 7}')
    ui.click("#publish-submit")
    assert wait_for(lambda: ui.text("#publish-result"), "the publish result") == "Message published."
    got = ui.api.request("POST", "/api/queues/%2F/audit/get", {"count": 10, "ackmode": "ack_requeue_true", "encoding": "auto"})
    assert [(m["payload"], m["routing_key"], m["exchange"]) for m in got] == [('{"order": 7}', "order.created", "events")]
    ui.type_into("#publish-routing-key", "invoice.created")
    ui.click("#publish-submit")
    wait_for(lambda: ui.text("#publish-result") == "Message published, but not routed.", "the unroutable publish")
    ui.screenshot("exchange")
    ui.tab("exchanges")
    ui.screenshot("exchanges")


def test_bindings_page_lists_and_filters(ui: Ui) -> None:
    ui.tab("bindings")
    wait_for(lambda: ui.text("#bindings-page-info").startswith("Showing 100 of"), "a page of bindings")
    ui.find("#bindings-filter").send_keys("audit")
    wait_for(lambda: len(ui.column("bindings-table", 2)) == 2, "the two bindings of audit")
    rows = list(zip(ui.column("bindings-table", 2), ui.column("bindings-table", 3), ui.column("bindings-table", 5)))
    assert rows == [("(AMQP default)", "audit", "audit"), ("events", "audit", "order.#")], rows
    ui.screenshot("bindings")


def test_peers_page_lists_the_processes(ui: Ui) -> None:
    ui.tab("peers")
    processes = wait_for(lambda: ui.column("peers-table", 2), "the peer rows")
    assert f"pid {ui.consumer_pid}" in processes, processes
    assert len(processes) == len(set(processes)), f"one row per process: {processes}"
    row = processes.index(f"pid {ui.consumer_pid}")
    assert ui.column("peers-table", 3)[row] == "shmq"
    assert ui.column("peers-table", 4)[row] == "running"
    assert ui.column("peers-table", 5)[row] == "1"  # one consumer
    assert "tasks" in ui.column("peers-table", 7)[row]
    api_pids = {p["pid"] for p in ui.api.request("GET", "/api/shmq/peers")}
    assert ui.consumer_pid in api_pids
    ui.screenshot("peers")


def test_shovels_page_shows_states_and_hides_passwords(ui: Ui) -> None:
    ui.tab("shovels")
    wait_for(lambda: ui.column("shovels-table", 2) == ["mover", "to-rabbit"], "both shovels")
    wait_for(lambda: ui.column("shovels-table", 3) == ["running", "terminated"], "mover running")
    wait_for(lambda: ui.api.request("GET", "/api/queues/%2F/outbox")["messages_ready"] == 10, "mover to move the 10 parcels")
    # The runner writes its count at most once a second while messages
    # move, so the last batch's may not be written yet.
    assert ui.column("shovels-table", 6)[0].isdigit()
    assert "amqp://shovel:***@127.0.0.1:1/%2f" in ui.column("shovels-table", 5)[1]
    assert "no `shmq shovel run` process runs it" in ui.column("shovels-table", 7)[1]
    assert "s3cret" not in ui.driver.page_source
    shovels = {s["name"]: s for s in ui.api.request("GET", f"/api/shovels/{ui.vhost}")}
    assert (shovels["mover"]["state"], shovels["mover"]["type"], shovels["mover"]["src_queue"]) == ("running", "dynamic", "inbox")
    assert 0 <= shovels["mover"]["forwarded"] <= 10
    assert (shovels["to-rabbit"]["state"], shovels["to-rabbit"]["dest_uri"]) == ("terminated", "amqp://shovel:***@127.0.0.1:1/%2f")
    ui.screenshot("shovels")


def test_logging_out_returns_to_the_login_form(ui: Ui) -> None:
    ui.click("#logout")
    wait_for(lambda: ui.visible("#login-form"), "the login form")
    assert ui.driver.execute_script("return sessionStorage.getItem('shmq-auth')") is None
