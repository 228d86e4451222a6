"""The web app in a real browser: Debian's headless Chromium (/usr/bin/chromium) driven by
Playwright, against ``invoiceflow dev`` (a subprocess on a free port with its own data). Sign
in, upload a valid and an invalid invoice, see the problems, choose the formats (e-invoices,
Factur-X or PDF, a 422's rule ids), wait for ready, preview and
download the PDF, page and search the list, sign out; the same by keyboard only; files dropped
on the drop zone, the preview's blob of application/pdf, and an axe-core scan with no serious
or critical violation. Without Chromium (or Playwright, or the axe-core
package: ``npm ci`` in tests/fixtures/browser) these skip, or fail when CI is set.

``WEBAPP_SCREENSHOT=docs/webapp.png`` makes the axe test save its screenshot there (README)."""

from __future__ import annotations

import json
import os
import re
import time
import warnings
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
import requests

from invoiceflow.webapp import CONTENT_SECURITY_POLICY
from support.api import EXAMPLES, ROOT
from support.devprocess import Dev, add_user, embedded_env
from support.services import fail_or_skip

#: one worker runs them all, on one browser and one ``invoiceflow dev``
pytestmark = pytest.mark.xdist_group("browser")

CHROMIUM = Path("/usr/bin/chromium")
#: no sandbox (root in a container), no GPU, and no network but the page's own
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
AXE = ROOT / "tests" / "fixtures" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
#: what would leave the machine (blob:, data: and the browser's own chrome: pages stay in it)
NETWORK = ("http:", "https:", "ws:", "wss:")
EMAIL, PASSWORD = "web@example.com", "a-web-password-long-enough"
READY_MS = 90_000


def _document(number: str, **changes: Any) -> str:
    doc = json.loads((EXAMPLES / "minimal.json").read_text())
    return json.dumps({**doc, "number": number, **changes})


#: an invoice the API refuses: a quantity that is not a number, a currency that is no code
INVALID = _document(
    "WEB-BAD",
    currency="EURO",
    items=[{"description": "Consulting", "quantity": "two", "unit_price": "150.00"}],
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        fail_or_skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    if not AXE.exists():
        fail_or_skip("axe-core is missing (npm ci in tests/fixtures/browser)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        fail_or_skip("playwright is not installed (bash scripts/install.sh test)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    """``invoiceflow dev`` with the embedded backends and one user."""
    tmp = tmp_path_factory.mktemp("webapp")
    env = embedded_env(tmp / "data")
    add_user(env, EMAIL, PASSWORD)
    server = Dev(env, tmp / "dev.log").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(browser: Any, dev: Dev, tmp_path: Path) -> Iterator[Any]:
    """A fresh context (no state shared between tests) that records console errors and
    every request that leaves the product's origin."""
    context = browser.new_context(accept_downloads=True, bypass_csp=False)
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    tab.errors, tab.foreign = [], []
    tab.on("console", lambda m: tab.errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: tab.errors.append(str(e)))
    tab.on(
        "request",
        lambda r: (
            tab.foreign.append(r.url)
            if r.url.startswith(NETWORK) and not r.url.startswith(dev.url + "/")
            else None
        ),
    )
    yield tab
    context.close()
    assert not tab.foreign, tab.foreign


def _sign_in(page: Any, dev: Dev) -> None:
    page.goto(dev.url + "/")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text(f"Signed in as {EMAIL}").wait_for()


def _files(tmp_path: Path, **documents: str) -> list[str]:
    paths = []
    for name, text in documents.items():
        path = tmp_path / f"{name}.json"
        path.write_text(text)
        paths.append(str(path))
    return paths


def _card(page: Any, number: str) -> Any:
    return page.locator("#uploads .card", has_text=number)


def _token(dev: Dev) -> dict[str, str]:
    r = requests.post(f"{dev.url}/login", auth=(EMAIL, PASSWORD), timeout=30)
    return {"Authorization": f"Bearer {r.json()['token']}"}


def test_sign_in_upload_see_problems_wait_for_ready_download_and_sign_out(
    page: Any, dev: Dev, tmp_path: Path
) -> None:
    from playwright.sync_api import expect
    from pypdf import PdfReader

    response = page.goto(dev.url + "/")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")
    _sign_in(page, dev)

    # one drop of two files: a valid invoice and one the API refuses
    page.locator("#files").set_input_files(_files(tmp_path, good=_document("WEB-1"), bad=INVALID))
    bad = page.locator("#uploads .card", has_text="bad.json")
    expect(bad.locator(".status")).to_have_text("rejected (422)")
    problems = bad.locator(".problems li")
    expect(problems.first).to_be_visible()
    pointers = problems.locator("code").all_inner_texts()
    assert "/items/0/quantity" in pointers, pointers
    assert "/currency" in pointers, pointers
    expect(bad.locator(".problems li", has_text="/currency")).to_contain_text('(is "EURO")')

    good = _card(page, "WEB-1")
    expect(good.locator(".status")).to_have_text("ready", timeout=READY_MS)
    assert good.locator("p[aria-live]").count() == 1  # the status is announced

    # page 1 of the PDF, as a blob: URL of application/pdf in the preview frame
    good.get_by_role("button", name="Preview PDF").click()
    frame = page.locator("#preview-frame")
    expect(frame).to_have_attribute("src", re.compile(r"^blob:"))
    src = frame.get_attribute("src")
    for _ in range(50):  # the frame navigates a moment after its src is set
        if any(f.url == src for f in page.frames):
            break
        page.wait_for_timeout(100)
    assert any(f.url == src for f in page.frames), [f.url for f in page.frames]

    with page.expect_download() as download:
        good.get_by_role("button", name="Download PDF").click()
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF-")
    assert "WEB-1" in PdfReader(BytesIO(pdf)).pages[0].extract_text()
    assert download.value.suggested_filename.endswith(".pdf")
    with page.expect_download() as download:
        good.get_by_role("button", name="Download XLSX").click()
    assert Path(download.value.path()).read_bytes()[:2] == b"PK"

    # pasted JSON goes the same way
    page.get_by_label("Or paste an invoice's JSON").fill(_document("WEB-PASTED"))
    page.get_by_role("button", name="Upload pasted JSON").click()
    expect(_card(page, "WEB-PASTED").locator(".status")).to_have_text("ready", timeout=READY_MS)

    # the list: paging (10 a page) and the search over number and status
    auth = _token(dev)
    for n in range(10):
        r = requests.post(
            f"{dev.url}/upload",
            data=_document(f"WEB-LIST-{n:02d}"),
            headers={**auth, "Content-Type": "application/json"},
            timeout=30,
        )
        assert r.status_code == 202
    page.get_by_role("button", name="Refresh").click()
    rows = page.locator("#invoices tbody tr")
    expect(rows).to_have_count(10)
    expect(page.locator("#page-no")).to_have_text("Page 1")
    page.get_by_role("button", name="Next page").click()
    expect(page.locator("#page-no")).to_have_text("Page 2")
    expect(rows).to_have_count(2)  # WEB-1 and WEB-PASTED, the oldest
    page.get_by_label("Search this page by number or status").fill("pasted")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("WEB-PASTED")
    page.get_by_role("button", name="Previous page").click()
    expect(page.locator("#page-no")).to_have_text("Page 1")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#work")).to_be_hidden()
    assert page.locator("#uploads .card").count() == 0
    assert not [e for e in page.errors if "Content Security Policy" in e], page.errors


def test_every_download_button_of_a_ready_invoice_downloads_its_file(page: Any, dev: Dev) -> None:
    """Each file the invoice lists (the rendered ones, the submitted JSON and the completed
    document with its number) has a named button, and each downloads that file under the
    name the server gives it (its UTF-8 ``filename*``: an umlaut stays one)."""
    from playwright.sync_api import expect

    _sign_in(page, dev)
    page.get_by_label("Or paste an invoice's JSON").fill(_document("WEB-FILES-Ä"))
    page.get_by_role("button", name="Upload pasted JSON").click()
    card = _card(page, "WEB-FILES-Ä")
    expect(card.locator(".status")).to_have_text("ready", timeout=READY_MS)
    buttons = card.locator(".actions button", has_text="Download")
    names = buttons.all_inner_texts()
    assert names == [
        "Download PDF",
        "Download XLSX",
        "Download submitted JSON",
        "Download completed JSON",
    ], names
    saved = []
    for index, name in enumerate(names):
        with page.expect_download() as download:
            buttons.nth(index).click()
        data = Path(download.value.path()).read_bytes()
        assert data, name
        saved.append(download.value.suggested_filename)
        assert saved[-1].startswith("WEB-FILES-Ä."), name
        if name.endswith("JSON"):
            assert json.loads(data)["number"] == "WEB-FILES-Ä", name
    # each file under a name of its own: the two JSON documents do not overwrite each other
    assert saved == [
        "WEB-FILES-Ä.pdf",
        "WEB-FILES-Ä.xlsx",
        "WEB-FILES-Ä.json",
        "WEB-FILES-Ä.completed.json",
    ], saved
    assert "cannot be fetched" not in page.locator("#notice").inner_text()


def test_keyboard_only_sign_in_and_upload(page: Any, dev: Dev, tmp_path: Path) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import expect

    page.goto(dev.url + "/")
    keys = page.keyboard

    def focused() -> str:
        return str(page.evaluate("document.activeElement.id"))

    def tab_to(element_id: str, key: str = "Tab") -> None:
        for _ in range(20):
            if focused() == element_id:
                return
            keys.press(key)
        raise AssertionError(f"{key} never reaches #{element_id}")

    keys.press("Tab")  # from the page: the skip link, then the form
    tab_to("email")
    keys.type(EMAIL)
    keys.press("Tab")
    assert focused() == "password"
    keys.type(PASSWORD)
    keys.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Sign in"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"  # the focus is visible
    keys.press("Enter")
    page.get_by_text(f"Signed in as {EMAIL}").wait_for()
    assert focused() == "upload-title"  # focus moves to what comes next

    # the formats come first: Space checks one (CII), Tab walks on to the files
    keys.press("Tab")
    assert page.evaluate("document.activeElement.value") == "pdf"
    keys.press("Tab")
    keys.press("Tab")
    assert page.evaluate("document.activeElement.value") == "cii"
    keys.press("Space")
    expect(page.get_by_label("CII (EN 16931 / XRechnung)")).to_be_checked()
    keys.press("Space")  # and unchecks it again: minimal.json is no e-invoice
    expect(page.get_by_label("CII (EN 16931 / XRechnung)")).not_to_be_checked()
    tab_to("files")
    # Space on the focused file input opens the native chooser. In two of three fresh-clone CI
    # runs on 2026-12-01 (the whole suite, two workers) Chromium let one such press pass
    # without a chooser, never when the browser tests ran alone or beside the benchmark's: so
    # the press is repeated (at most three, the focus still on the input), never replaced.
    for attempt in range(3):
        assert focused() == "files"
        try:
            with page.expect_file_chooser(timeout=10_000) as chooser:
                keys.press("Space")
            break
        except PlaywrightTimeoutError:
            state = page.evaluate(
                "[document.activeElement.id, document.hasFocus(), document.visibilityState]"
            )
            if attempt == 2:
                raise AssertionError(f"Space never opened the file chooser: {state}") from None
            warnings.warn(f"Space opened no file chooser (page: {state}); again", stacklevel=1)
    chooser.value.set_files(_files(tmp_path, keyboard=_document("WEB-KEYS")))
    expect(_card(page, "WEB-KEYS").locator(".status")).to_have_text("ready", timeout=READY_MS)

    assert focused() == "files"  # the focus stays where it was
    keys.press("Tab")
    assert focused() == "paste"
    keys.insert_text(INVALID)
    keys.press("Tab")
    assert focused() == "send-paste"
    keys.press("Space")
    expect(page.locator("#uploads .card", has_text="pasted JSON").locator(".status")).to_have_text(
        "rejected (422)"
    )

    tab_to("sign-out", "Shift+Tab")
    keys.press("Enter")
    expect(page.locator("#sign-in")).to_be_visible()
    assert focused() == "email"


def _example(name: str, **changes: Any) -> str:
    return json.dumps({**json.loads((EXAMPLES / name).read_text()), **changes})


def _peppol_example(name: str, **changes: Any) -> str:
    """An example meant for CII with its email (EM) addresses, which Peppol refuses for ubl
    (PEPPOL-EN16931-CL008), replaced by the party's German VAT id (9930)."""
    doc = json.loads((EXAMPLES / name).read_text())
    for party in (doc["seller"], doc["bill_to"]):
        if party["electronic_address"]["scheme"] == "EM":
            party["electronic_address"] = {"id": party["vat_id"], "scheme": "9930"}
    return json.dumps({**doc, **changes})


def test_formats_e_invoices_factur_x_or_pdf_and_rule_ids(
    page: Any, dev: Dev, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    _sign_in(page, dev)
    boxes = {
        fmt: page.get_by_label(label, exact=True)
        for fmt, label in [
            ("pdf", "PDF"),
            ("xlsx", "Excel"),
            ("cii", "CII (EN 16931 / XRechnung)"),
            ("ubl", "UBL (Peppol)"),
            ("facturx", "Factur-X"),
        ]
    }
    expect(page.get_by_role("group", name="Formats")).to_be_visible()

    def checked() -> list[str]:
        return [fmt for fmt, box in boxes.items() if box.is_checked()]

    assert checked() == ["pdf", "xlsx"]  # the server's default

    # Factur-X is the PDF with the e-invoice inside: one or the other, and the form says why
    boxes["facturx"].check()
    assert checked() == ["xlsx", "facturx"]
    expect(page.locator("#formats-note")).to_contain_text("PDF unchecked: Factur-X is the PDF")
    boxes["pdf"].check()
    assert checked() == ["pdf", "xlsx"]
    expect(page.locator("#formats-note")).to_contain_text("Factur-X unchecked")
    boxes["xlsx"].uncheck()
    expect(page.locator("#formats-note")).to_be_empty()

    # nothing checked: nothing is sent
    boxes["pdf"].uncheck()
    page.get_by_label("Or paste an invoice's JSON").fill(_document("WEB-NO-FORMAT"))
    page.get_by_role("button", name="Upload pasted JSON").click()
    expect(page.locator("#notice")).to_have_text("Check at least one format under Formats first.")
    assert page.locator("#uploads .card").count() == 0

    # two e-invoices at once, with CII and UBL: ready, with both XML files to download
    boxes["pdf"].check()
    boxes["cii"].check()
    boxes["ubl"].check()
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/upload" in r.url else None)
    page.locator("#files").set_input_files(
        _files(
            tmp_path,
            facturx=_peppol_example("de-facturx-b2b.json", number="WEB-EN-1"),
            xrechnung=_peppol_example("de-xrechnung-b2g.json", number="WEB-EN-2"),
        )
    )
    auth = _token(dev)
    for number in ("WEB-EN-1", "WEB-EN-2"):
        card = _card(page, number)
        expect(card.locator(".status")).to_have_text("ready", timeout=READY_MS)
        expect(card.locator(".asked")).to_have_text("Formats: PDF, CII, UBL")
        for name in ("PDF", "CII e-invoice (XML)", "UBL e-invoice (XML)"):
            button = card.get_by_role("button", name=f"Download {name} of invoice {number}")
            expect(button).to_be_visible()
        expect(card.get_by_role("button", name="Download XLSX")).to_have_count(0)
        view = requests.get(
            f"{dev.url}/invoices/{card.get_attribute('data-invoice-id')}", headers=auth, timeout=30
        ).json()
        assert sorted(view["formats"]) == ["cii", "pdf", "ubl"], view
    assert len(sent) == 2 and all(u.endswith("/upload?formats=pdf,cii,ubl") for u in sent), sent
    with page.expect_download() as download:
        _card(page, "WEB-EN-1").get_by_role("button", name="Download CII e-invoice (XML)").click()
    xml = Path(download.value.path()).read_bytes()
    assert b"CrossIndustryInvoice" in xml and b"WEB-EN-1" in xml
    assert download.value.suggested_filename.endswith(".xml")

    # Factur-X instead of PDF, pasted: the PDF preview shows the Factur-X file
    boxes["facturx"].check()
    boxes["cii"].uncheck()
    boxes["ubl"].uncheck()
    page.get_by_label("Or paste an invoice's JSON").fill(
        _example("de-facturx-b2b.json", number="WEB-FX")
    )
    page.get_by_role("button", name="Upload pasted JSON").click()
    fx = _card(page, "WEB-FX")
    expect(fx.locator(".status")).to_have_text("ready", timeout=READY_MS)
    expect(fx.get_by_role("button", name="Download Factur-X PDF")).to_be_visible()
    expect(fx.get_by_role("button", name="Download PDF")).to_have_count(0)
    fx.get_by_role("button", name="Preview PDF").click()
    expect(page.locator("#preview-frame")).to_have_attribute("src", re.compile(r"^blob:"))
    assert sent[-1].endswith("/upload?formats=facturx"), sent

    # minimal.json is no EN 16931 invoice: with CII, the 422 names each broken rule
    boxes["pdf"].check()
    boxes["cii"].check()
    assert checked() == ["pdf", "cii"]
    page.get_by_label("Or paste an invoice's JSON").fill((EXAMPLES / "minimal.json").read_text())
    page.get_by_role("button", name="Upload pasted JSON").click()
    bad = page.locator("#uploads .card", has_text="pasted JSON").first
    expect(bad.locator(".status")).to_have_text("rejected (422)")
    expect(bad.locator(".problems li").first).to_be_visible()
    rules = bad.locator(".problems .rule").all_inner_texts()
    assert rules and all(re.fullmatch(r"BR-[A-Z0-9-]+", r) for r in rules), rules
    texts = bad.locator(".problems li").all_inner_texts()
    assert any(re.match(r"BR-[A-Z0-9-]+ · /\S*: \S", t) for t in texts), texts
    assert not [e for e in page.errors if "Content Security Policy" in e], page.errors


def _serious(page: Any) -> list[dict[str, Any]]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_no_serious_violation(browser: Any, dev: Dev) -> None:
    """axe-core is injected into the page, so this context bypasses the page's CSP."""
    from playwright.sync_api import expect

    context = browser.new_context(bypass_csp=True, viewport={"width": 1100, "height": 1500})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(dev.url + "/")
        assert _serious(page) == []
        _sign_in(page, dev)
        # dropped on the drop zone, as a person drags files from their desktop
        dropped = page.evaluate_handle(
            """(files) => {
                const transfer = new DataTransfer();
                for (const [name, text] of files) {
                    transfer.items.add(new File([text], name, { type: "application/json" }));
                }
                return transfer;
            }""",
            [["invoice.json", _document("WEB-AXE")], ["broken.json", INVALID]],
        )
        page.locator("#drop").dispatch_event("drop", {"dataTransfer": dropped})
        expect(_card(page, "WEB-AXE").locator(".status")).to_have_text("ready", timeout=READY_MS)
        expect(
            page.locator("#uploads .card", has_text="broken.json").locator(".problems li").first
        ).to_be_visible()
        # an e-invoice format asked for a document that is none: the 422 with rule ids
        page.get_by_label("CII (EN 16931 / XRechnung)").check()
        einvoice = json.loads(_example("de-facturx-b2b.json", number="WEB-AXE-EN"))
        del einvoice["seller"]["vat_id"], einvoice["seller"]["tax_id"]
        page.get_by_label("Or paste an invoice's JSON").fill(json.dumps(einvoice, indent=2))
        page.get_by_role("button", name="Upload pasted JSON").click()
        expect(
            page.locator("#uploads .card", has_text="pasted JSON").locator(".problems .rule").first
        ).to_be_visible()
        page.get_by_role("button", name="Refresh").click()
        expect(page.locator("#invoices tbody tr").first).to_be_visible()
        # the preview is page 1 of the PDF, as a blob: URL of application/pdf (the fetch needs
        # this context's bypass: the page's policy allows connect-src 'self' only)
        _card(page, "WEB-AXE").get_by_role("button", name="Preview PDF").click()
        expect(page.locator("#preview-frame")).to_have_attribute("src", re.compile(r"^blob:"))
        kind, head = page.evaluate(
            """async () => {
                const src = document.getElementById('preview-frame').src;
                const blob = await (await fetch(src)).blob();
                return [blob.type, await blob.slice(0, 5).text()];
            }"""
        )
        assert (kind, head) == ("application/pdf", "%PDF-")
        time.sleep(0.5)
        assert _serious(page) == []
        # the top of the page (and of the pasted JSON): the form and the uploads
        page.evaluate("window.scrollTo(0, 0); document.getElementById('paste').scrollTop = 0")
        shot = page.screenshot()
        target = os.environ.get("WEBAPP_SCREENSHOT")
        if target:
            Path(target).write_bytes(shot)
    finally:
        context.close()
