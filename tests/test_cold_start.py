"""What a function's cold start loads (issue 12: process start to first 2xx): each function's
entry module loads only what its first request needs. Fresh processes, so nothing a test
imported before counts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: packages only the renderers, intake's document checks or the mail need
HEAVY = ("babel", "reportlab", "openpyxl", "jsonschema", "jsonschema_rs", "PIL", "segno")


def loaded_after_create_app(function: str, watched: tuple[str, ...]) -> list[str]:
    """The modules of ``watched`` (top-level packages or dotted modules) loaded by building
    ``function``'s app as functions-framework does, in a fresh process."""
    script = (
        "import sys\n"
        "from functions_framework import create_app\n"
        f"create_app({function!r}, 'functions/{function}.py')\n"
        f"watched = {watched!r}\n"
        "print(','.join(sorted(w for w in watched if w in sys.modules)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return [m for m in out.stdout.strip().split(",") if m]


@pytest.mark.parametrize("function", ["login", "download", "dead_letter"])
def test_functions_that_only_answer_load_no_renderer_locale_data_or_schema(function: str) -> None:
    assert loaded_after_create_app(function, HEAVY) == []


@pytest.mark.parametrize("function", ["login", "download"])
def test_login_and_download_do_not_load_acceptance(function: str) -> None:
    """Accepting documents (parsing, numbering, the printable check, the outbox) and the
    branding settings are the upload function's: its handlers import them."""
    watched = ("invoiceflow.acceptance", "invoiceflow.branding", "invoiceflow.outbox")
    assert loaded_after_create_app(function, watched) == []


@pytest.mark.parametrize("function", ["login", "download", "dead_letter"])
def test_the_settings_do_not_load_the_document_parser(function: str) -> None:
    """The settings take MAX_DOCUMENT_BYTES' default from invoiceflow.domain.limits, and the
    domain package imports its names when first used: functions that never parse a document
    do not load the parser, the model or the totals (~24 ms of every cold start)."""
    watched = (
        "invoiceflow.domain.parse",
        "invoiceflow.domain.model",
        "invoiceflow.domain.totals",
    )
    assert loaded_after_create_app(function, watched) == []


def test_a_japanese_document_registers_only_the_fonts_it_prints_in() -> None:
    """Choosing each word's font reads the fonts' character sets from render/fonts/faces.txt,
    so a Japanese document no longer parses the Arabic, Hebrew, Thai and Devanagari fonts
    (pure-Python TrueType parsing: most of render-pdf's first request) on its way to the
    Japanese one."""
    script = (
        "import json\n"
        "from reportlab.pdfbase import pdfmetrics\n"
        "from invoiceflow.domain import parse_invoice\n"
        "from invoiceflow.render.pdf import render_pdf\n"
        "data = open('events/examples/invoices/jpy-no-decimals.json', 'rb').read()\n"
        "assert render_pdf(parse_invoice(data).invoice).startswith(b'%PDF')\n"
        "names = pdfmetrics.getRegisteredFontNames()\n"
        "print(','.join(sorted(n for n in names if n not in pdfmetrics.standardFonts)))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().split(",") == ["DejaVuSans", "DejaVuSans-Bold", "IPAexGothic"]


@pytest.mark.parametrize(
    ("example", "makes_a_qr_code"), [("minimal.json", False), ("ch-qr-bill.json", True)]
)
def test_segno_is_loaded_only_for_a_document_with_a_qr_code(
    example: str, makes_a_qr_code: bool
) -> None:
    """The QR-code library is imported when a GiroCode or a Swiss QR-bill is drawn, not with
    the renderer."""
    script = (
        "import sys\n"
        "from invoiceflow.domain import parse_invoice\n"
        "from invoiceflow.render.pdf import render_pdf\n"
        f"data = open('events/examples/invoices/{example}', 'rb').read()\n"
        "assert render_pdf(parse_invoice(data).invoice).startswith(b'%PDF')\n"
        "print('segno' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(makes_a_qr_code)


def test_emitting_to_the_broker_does_not_import_requests() -> None:
    """K_SINK is cluster-local (or loopback in the local runtime): the event goes out over
    http.client (events.PlainSession), so a function's first emit does not import requests,
    urllib3 or charset_normalizer (~40-55 ms of every emitting function's cold start)."""
    script = (
        "import sys, threading\n"
        "from http.server import BaseHTTPRequestHandler, HTTPServer\n"
        "class Sink(BaseHTTPRequestHandler):\n"
        "    def do_POST(self):\n"
        "        self.rfile.read(int(self.headers['Content-Length']))\n"
        "        self.send_response(202); self.send_header('Content-Length', '0')\n"
        "        self.end_headers()\n"
        "    def log_message(self, *args): pass\n"
        "server = HTTPServer(('127.0.0.1', 0), Sink)\n"
        "threading.Thread(target=server.serve_forever, daemon=True).start()\n"
        "from invoiceflow import events\n"
        "event = events.make_event(events.INVOICE_UPLOADED, '/upload', {'invoice_id': 'x'})\n"
        "events.send(event, f'http://127.0.0.1:{server.server_port}/ns/default')\n"
        "print(','.join(m for m in ('requests', 'urllib3', 'charset_normalizer') "
        "if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


def test_checking_a_documents_countries_and_currency_loads_no_locale_data() -> None:
    """Upload and intake check every address's country against locale/countries.txt, not
    against Babel's English territory names (its locale data, and babel.dates that unpickling
    it imports: ~40 ms of their first request), and the currency and its minor unit against
    locale/currencies.txt, not babel.numbers and Babel's global data (~20 ms)."""
    script = (
        "import json, sys\n"
        "from invoiceflow.domain import parse_invoice\n"
        "doc = json.load(open('events/examples/invoices/de-credit-note.json'))\n"
        "assert doc['seller']['address']['country'] == 'DE'\n"
        "assert parse_invoice(json.dumps(doc)).invoice\n"
        "doc['seller']['address']['country'] = 'QQ'\n"
        "try:\n"
        "    parse_invoice(json.dumps(doc))\n"
        "except Exception as exc:\n"
        "    assert 'not a known ISO 3166-1 country' in str(exc.problems), exc.problems\n"
        "else:\n"
        "    raise AssertionError('QQ accepted')\n"
        "watched = ('babel.dates', 'babel.localtime', 'babel.numbers')\n"
        "print(','.join(m for m in watched if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("function", ["render_pdf", "render_xlsx", "render_xml", "intake"])
def test_functions_that_send_no_email_do_not_load_the_mail_modules(function: str) -> None:
    """Only a step that sends an email (notify, dead-letter's failed email) imports the email
    texts and the mail transport (and the email package they use): :func:`steps.send_once`."""
    watched = ("invoiceflow.emails", "invoiceflow.mail", "email.policy", "email.generator")
    assert loaded_after_create_app(function, watched) == []
