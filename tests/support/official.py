"""The official EN 16931 validation artefacts (CEN/TC 434, ../shared/en16931) run on XML the
project writes: the compiled Schematron (XSLT 2.0, with Saxon-HE) and the CII XML Schema (lxml).

A test that uses them fails under CI when ../shared is missing, and is skipped elsewhere
(``fail_or_skip``); the stylesheets are compiled once per process (about a second each)."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from support.services import fail_or_skip

SHARED = Path(
    os.environ.get("INVOICEFLOW_SHARED", Path(__file__).resolve().parents[2].parent / "shared")
)
EN16931 = SHARED / "en16931"
XRECHNUNG = SHARED / "xrechnung"
STYLESHEETS = {
    "cii": EN16931 / "cii" / "xslt" / "EN16931-CII-validation.xslt",
    "ubl": EN16931 / "ubl" / "xslt" / "EN16931-UBL-validation.xslt",
}
CII_XSD = (
    EN16931
    / "cii"
    / "schema"
    / "uncefact"
    / "data"
    / "standard"
    / ("CrossIndustryInvoice_100pD16B.xsd")
)
SVRL = "{http://purl.oclc.org/dsdl/svrl}"


@dataclass(frozen=True)
class Assertion:
    id: str
    flag: str
    text: str
    location: str


def require_shared() -> None:
    if not STYLESHEETS["cii"].is_file():
        fail_or_skip(f"the official EN 16931 artefacts are not at {EN16931}")


@cache
def processor() -> Any:
    """The one Saxon-HE processor of the process (the stylesheets it compiles share it)."""
    from saxonche import PySaxonProcessor

    return PySaxonProcessor(license=False)


@cache
def _stylesheet(syntax: str) -> Any:
    require_shared()
    proc = processor()
    return proc.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(STYLESHEETS[syntax]))


def assertions(xml: bytes, syntax: Literal["cii", "ubl"]) -> list[Assertion]:
    """Every failed assertion the official Schematron reports for ``xml``."""
    proc = processor()
    node = proc.parse_xml(xml_text=xml.decode("utf-8"))
    svrl = _stylesheet(syntax).transform_to_string(xdm_node=node)
    root = ET.fromstring(svrl.encode("utf-8"))  # noqa: S314 (Saxon's own SVRL output)
    return [
        Assertion(
            a.get("id") or "",
            a.get("flag") or "",
            " ".join("".join(a.itertext()).split()),
            a.get("location") or "",
        )
        for a in root.iter(f"{SVRL}failed-assert")
    ]


def fatal(xml: bytes, syntax: Literal["cii", "ubl"]) -> list[Assertion]:
    """The fatal failed assertions: [] means the XML passes every EN 16931 rule."""
    return [a for a in assertions(xml, syntax) if a.flag == "fatal"]


@cache
def _cii_schema() -> Any:
    from lxml import etree

    require_shared()
    return etree.XMLSchema(etree.parse(str(CII_XSD)))


def cii_schema_errors(xml: bytes) -> list[str]:
    """What the CII D16B XML Schema says about ``xml`` ([] when valid)."""
    from lxml import etree

    schema = _cii_schema()
    doc = etree.fromstring(xml)
    if schema.validate(doc):
        return []
    return [f"{e.line}: {e.message}" for e in schema.error_log]
