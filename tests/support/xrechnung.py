"""XRechnung's Schematron (KoSIT, ../shared/xrechnung) run on CII the project writes.

The XRechnung rules ship as Schematron sources, not compiled. No Schematron processor for
Python 3.11 is at hand (pyschematron needs Python 3.12), so :func:`compile_schematron` turns
the ``.sch`` into an XSLT 3.0 stylesheet the ISO way (each pattern a mode, each rule a
template in document order of priority, each assert an ``xsl:if`` that writes an SVRL
``failed-assert``; the schema's ``let``s and ``xsl:function``s carried over), and Saxon-HE
runs it like the compiled EN 16931 artefacts (:mod:`support.official`)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from functools import cache
from pathlib import Path
from typing import Any

from lxml import etree

from support.official import XRECHNUNG, Assertion, processor, require_shared

SCH = "http://purl.oclc.org/dsdl/schematron"
XSL = "http://www.w3.org/1999/XSL/Transform"
SVRL_NS = "http://purl.oclc.org/dsdl/svrl"
CII_SCH = XRECHNUNG / "cii" / "XRechnung-CII-validation.sch"


def _q(ns: str, tag: str) -> str:
    return f"{{{ns}}}{tag}"


def _patterns(schema: Any, base: Path) -> list[Any]:
    """The schema's patterns, with ``include``d files read in place."""
    out = []
    for child in schema:
        if child.tag == _q(SCH, "pattern"):
            out.append(child)
        elif child.tag == _q(SCH, "include"):
            out.append(etree.parse(str((base / child.get("href")).resolve())).getroot())
    return out


def compile_schematron(path: Path) -> str:
    """An XSLT 3.0 stylesheet that validates like the Schematron at ``path`` (queryBinding
    xslt2, all patterns active) and writes SVRL."""
    schema = etree.parse(str(path)).getroot()
    nsmap = {"xs": "http://www.w3.org/2001/XMLSchema", "svrl": SVRL_NS, "xsl": XSL}
    for prefix, uri in schema.nsmap.items():
        if prefix and uri != SCH:
            nsmap[prefix] = uri
    for ns in schema.iter(_q(SCH, "ns")):
        nsmap[ns.get("prefix")] = ns.get("uri")
    out = etree.Element(_q(XSL, "stylesheet"), nsmap=nsmap, version="3.0")
    etree.SubElement(out, _q(XSL, "output"), method="xml", indent="no")
    for fn in schema.iter(_q(XSL, "function")):
        out.append(fn.__copy__())
    patterns = _patterns(schema, path.parent)
    # every let outside a rule is global (the contexts of later patterns name them)
    for pattern in patterns:
        for let in pattern.findall(_q(SCH, "let")):
            etree.SubElement(
                out, _q(XSL, "variable"), name=let.get("name"), select=let.get("value")
            )
    root = etree.SubElement(out, _q(XSL, "template"), match="/")
    report = etree.SubElement(root, _q(SVRL_NS, "schematron-output"))
    for i, pattern in enumerate(patterns):
        mode = f"p{i}"
        etree.SubElement(report, _q(XSL, "apply-templates"), select="/", mode=mode)
        rules = pattern.findall(_q(SCH, "rule"))
        for j, rule in enumerate(rules):
            t = etree.SubElement(
                out,
                _q(XSL, "template"),
                match=rule.get("context"),
                mode=mode,
                priority=str(1000 - j),
            )
            for child in rule:
                if child.tag == _q(SCH, "let"):
                    etree.SubElement(
                        t, _q(XSL, "variable"), name=child.get("name"), select=child.get("value")
                    )
                elif child.tag == _q(SCH, "assert"):
                    test = child.get("test")
                    check = etree.SubElement(t, _q(XSL, "if"), test=f"not({test})")
                    fa = etree.SubElement(
                        check,
                        _q(SVRL_NS, "failed-assert"),
                        id=child.get("id") or "",
                        flag=child.get("flag") or "",
                    )
                    etree.SubElement(fa, _q(SVRL_NS, "text")).text = " ".join(
                        "".join(child.itertext()).split()
                    )
            etree.SubElement(t, _q(XSL, "apply-templates"), select="@*|node()", mode=mode)
        default = etree.SubElement(
            out, _q(XSL, "template"), match="@*|node()", mode=mode, priority="-10"
        )
        etree.SubElement(default, _q(XSL, "apply-templates"), select="@*|node()", mode=mode)
    return str(etree.tostring(out, encoding="unicode"))


@cache
def _stylesheet() -> Any:
    require_shared()
    if not CII_SCH.is_file():
        from support.services import fail_or_skip

        fail_or_skip(f"the XRechnung Schematron is not at {CII_SCH}")
    proc = processor()
    return proc.new_xslt30_processor().compile_stylesheet(
        stylesheet_text=compile_schematron(CII_SCH)
    )


def assertions(xml: bytes) -> list[Assertion]:
    """Every failed assertion XRechnung's CII Schematron reports for ``xml``."""
    node = processor().parse_xml(xml_text=xml.decode("utf-8"))
    svrl = _stylesheet().transform_to_string(xdm_node=node)
    root = ET.fromstring(svrl.encode("utf-8"))  # noqa: S314 (our own stylesheet's SVRL)
    return [
        Assertion(
            a.get("id") or "",
            a.get("flag") or "",
            " ".join("".join(a.itertext()).split()),
            "",
        )
        for a in root.iter(f"{{{SVRL_NS}}}failed-assert")
    ]


def fatal(xml: bytes) -> list[Assertion]:
    """The fatal failed assertions: [] means the XML passes every XRechnung (BR-DE) rule."""
    return [a for a in assertions(xml) if a.flag == "fatal"]
