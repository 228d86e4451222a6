"""The Factur-X PDF/A-3b (:mod:`invoiceflow.render.facturx`), checked structurally with pypdf
and the ``factur-x`` package.

No PDF/A validator (veraPDF, a Java program) can be installed here, so these are structural
checks of what PDF/A-3b and Factur-X 1.0.7 / ZUGFeRD 2.3 require: the XMP identification and
Factur-X extension schema, the output intent with its ICC profile, the embedded XML and its
file specification, every font embedded, no encryption and no JavaScript or actions, the /ID,
and byte-identical output for the same document.

The PDF is made by :func:`render_facturx` from ``german_b2b()``; :data:`HAND_CII`, a small
hand-written CII, checks the XRechnung conformance level and :func:`facturx_pdf` alone.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import date
from typing import Any

import facturx
import pytest
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from invoiceflow.domain.model import DocumentReference, Logo
from invoiceflow.einvoice.cii import render_cii
from invoiceflow.errors import BusinessRuleViolation, Problem
from invoiceflow.render import facturx as fx
from invoiceflow.render.pdf import render_pdf
from render.conftest import png_bytes
from render.test_fonts_embedded import assert_all_embedded
from support.einvoice_samples import german_b2b

HAND_CII = """<?xml version="1.0" encoding="UTF-8"?>
<rsm:CrossIndustryInvoice \
xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100" \
xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100" \
xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
<rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>\
<ram:ID>{guideline}</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter>\
</rsm:ExchangedDocumentContext>
<rsm:ExchangedDocument><ram:ID>RE-2026-0042</ram:ID><ram:TypeCode>380</ram:TypeCode>\
<ram:IssueDateTime><udt:DateTimeString format="102">20261124</udt:DateTimeString>\
</ram:IssueDateTime></rsm:ExchangedDocument>
<rsm:SupplyChainTradeTransaction/>
</rsm:CrossIndustryInvoice>
"""
PRECEDING = (DocumentReference("RE-2026-0041", date(2026, 11, 2)),)
EN16931 = "urn:cen.eu:en16931:2017"
XRECHNUNG = "urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0"

NS = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "x": "adobe:ns:meta/",
    "pdfaid": "http://www.aiim.org/pdfa/ns/id/",
    "dc": "http://purl.org/dc/elements/1.1/",
    "pdf": "http://ns.adobe.com/pdf/1.3/",
    "xmp": "http://ns.adobe.com/xap/1.0/",
    "fx": fx.FX_NAMESPACE,
    "pdfaExtension": "http://www.aiim.org/pdfa/ns/extension/",
    "pdfaSchema": "http://www.aiim.org/pdfa/ns/schema#",
    "pdfaProperty": "http://www.aiim.org/pdfa/ns/property#",
}


def root(reader: PdfReader) -> Any:
    """The catalog (pypdf types its objects loosely)."""
    return reader.root_object


def trailer(reader: PdfReader) -> Any:
    return reader.trailer


def parse_xmp(stream: Any) -> ET.Element:
    data: bytes = stream.get_data()
    body = data.split(b"?>", 1)[1].rsplit(b"<?xpacket", 1)[0]
    return ET.fromstring(body)  # noqa: S314 (our own XMP packet)


def hand_cii(guideline: str = EN16931) -> bytes:
    return HAND_CII.format(guideline=guideline).encode("utf-8")


def make(invoice: Any = None, xml: bytes | None = None) -> tuple[bytes, bytes]:
    """(Factur-X PDF, the XML it should carry): render_facturx and render_cii, or the PDF of
    render_pdf with ``xml`` given."""
    invoice = german_b2b() if invoice is None else invoice
    if xml is None:
        return fx.render_facturx(invoice), render_cii(invoice)
    return fx.facturx_pdf(render_pdf(invoice), xml), xml


@pytest.fixture(scope="module")
def made() -> tuple[bytes, bytes]:
    return make()


@pytest.fixture(scope="module")
def reader(made: tuple[bytes, bytes]) -> PdfReader:
    return PdfReader(io.BytesIO(made[0]))


@pytest.fixture(scope="module")
def xmp(reader: PdfReader) -> ET.Element:
    stream = root(reader)["/Metadata"].get_object()
    assert "/Filter" not in stream  # the XMP is readable without decoding
    data = stream.get_data()
    assert data.startswith(b'<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>')
    assert data.rstrip().endswith(b'<?xpacket end="w"?>')
    return parse_xmp(stream)


def xmp_text(root: ET.Element, path: str) -> list[str]:
    return [el.text or "" for el in root.iterfind(f".//rdf:Description/{path}", NS)]


# ------------------------------------------------------------------------- the embedded XML


def test_the_xml_read_back_by_the_facturx_package_is_the_one_embedded(
    made: tuple[bytes, bytes],
) -> None:
    data, xml = made
    name, extracted = facturx.get_facturx_xml_from_pdf(io.BytesIO(data), check_xsd=False)
    assert name == "factur-x.xml"
    assert extracted == xml


@pytest.mark.parametrize(
    ("changes", "level"),
    [
        ({}, "EN 16931"),
        ({"buyer_reference": "04011000-12345-67"}, "XRECHNUNG"),
        ({"document_type": "credit_note", "preceding_invoices": PRECEDING}, "EN 16931"),
    ],
    ids=["en16931", "xrechnung", "credit-note"],
)
def test_render_facturx_embeds_render_cii_byte_for_byte(changes: Any, level: str) -> None:
    invoice = german_b2b(**changes)
    data = fx.render_facturx(invoice)
    # check_xsd: the factur-x package's own Factur-X EN 16931 schema accepts the XML
    name, extracted = facturx.get_xml_from_pdf(
        io.BytesIO(data), check_xsd=True, filenames=["factur-x.xml", "xrechnung.xml"]
    )
    assert name == ("xrechnung.xml" if level == "XRECHNUNG" else "factur-x.xml")
    assert extracted == render_cii(invoice)
    packet = root(PdfReader(io.BytesIO(data)))["/Metadata"].get_object().get_data()
    assert f"<fx:ConformanceLevel>{level}</fx:ConformanceLevel>".encode() in packet
    assert b"<fx:DocumentType>INVOICE</fx:DocumentType>" in packet  # credit notes too


def test_the_attachment_is_an_alternative_text_xml_file(reader: PdfReader, made: Any) -> None:
    catalog = root(reader)
    (spec_ref,) = catalog["/AF"]
    spec = spec_ref.get_object()
    names = catalog["/Names"]["/EmbeddedFiles"]["/Names"]
    assert names[0] == "factur-x.xml" and names[1].get_object() is spec
    assert spec["/Type"] == "/Filespec"
    assert spec["/F"] == spec["/UF"] == "factur-x.xml"
    assert spec["/AFRelationship"] == "/Alternative"
    stream = spec["/EF"]["/F"].get_object()
    assert stream["/Type"] == "/EmbeddedFile"
    assert stream["/Subtype"] == "/text/xml"
    assert b"/Subtype /text#2Fxml" in made[0]  # the name as written in the file
    params = stream["/Params"]
    assert params["/Size"] == len(made[1])
    assert params["/ModDate"] == "D:20261124000000+00'00'"  # the issue date
    assert stream.get_data() == made[1]


# --------------------------------------------------------------------------- PDF/A metadata


def test_the_xmp_identifies_pdfa_3b(xmp: ET.Element) -> None:
    assert xmp_text(xmp, "pdfaid:part") == ["3"]
    assert xmp_text(xmp, "pdfaid:conformance") == ["B"]


def test_the_xmp_has_the_facturx_properties_and_their_extension_schema(
    xmp: ET.Element,
) -> None:
    assert xmp_text(xmp, "fx:DocumentType") == ["INVOICE"]
    assert xmp_text(xmp, "fx:DocumentFileName") == ["factur-x.xml"]
    assert xmp_text(xmp, "fx:Version") == ["1.0"]
    assert xmp_text(xmp, "fx:ConformanceLevel") == ["EN 16931"]
    (schema,) = xmp.iterfind(".//pdfaExtension:schemas/rdf:Bag/rdf:li", NS)
    assert schema.findtext("pdfaSchema:namespaceURI", namespaces=NS) == fx.FX_NAMESPACE
    assert schema.findtext("pdfaSchema:prefix", namespaces=NS) == "fx"
    properties = {
        li.findtext("pdfaProperty:name", namespaces=NS): (
            li.findtext("pdfaProperty:valueType", namespaces=NS),
            li.findtext("pdfaProperty:category", namespaces=NS),
        )
        for li in schema.iterfind("pdfaSchema:property/rdf:Seq/rdf:li", NS)
    }
    assert properties == {
        name: ("Text", "external")
        for name in ("DocumentFileName", "DocumentType", "Version", "ConformanceLevel")
    }


def test_the_xmp_mirrors_the_document_information(reader: PdfReader, xmp: ET.Element) -> None:
    info: Any = reader.metadata
    assert info is not None
    assert "/Trapped" not in info
    # a German document: its name in German
    title = xmp_text(xmp, "dc:title/rdf:Alt/rdf:li")
    assert title == [info["/Title"]] == ["Rechnung RE-2026-0042"]
    assert xmp_text(xmp, "dc:creator/rdf:Seq/rdf:li") == [info["/Author"]]
    assert xmp_text(xmp, "dc:description/rdf:Alt/rdf:li") == [info["/Subject"]]
    assert xmp_text(xmp, "pdf:Producer") == [info["/Producer"]]
    assert xmp_text(xmp, "pdf:Keywords") == [info["/Keywords"]]
    assert xmp_text(xmp, "xmp:CreatorTool") == [info["/Creator"]] == ["invoiceflow"]
    assert info["/CreationDate"] == info["/ModDate"] == "D:20261124000000+00'00'"
    assert xmp_text(xmp, "xmp:CreateDate") == ["2026-11-24T00:00:00+00:00"]
    assert xmp_text(xmp, "xmp:ModifyDate") == ["2026-11-24T00:00:00+00:00"]


def test_an_xrechnung_cii_is_declared_as_such() -> None:
    data, xml = make(xml=hand_cii(XRECHNUNG))
    reader = PdfReader(io.BytesIO(data))
    xmp = parse_xmp(root(reader)["/Metadata"].get_object())
    assert xmp_text(xmp, "fx:ConformanceLevel") == ["XRECHNUNG"]
    # ZUGFeRD 2.3: the XML of the XRECHNUNG profile is embedded as xrechnung.xml
    assert xmp_text(xmp, "fx:DocumentFileName") == ["xrechnung.xml"]
    catalog = root(reader)
    (spec_ref,) = catalog["/AF"]
    spec = spec_ref.get_object()
    names = catalog["/Names"]["/EmbeddedFiles"]["/Names"]
    assert names[0] == "xrechnung.xml" and names[1].get_object() is spec
    assert spec["/F"] == spec["/UF"] == "xrechnung.xml"
    assert spec["/EF"]["/F"].get_object().get_data() == xml
    assert fx.conformance_level(hand_cii(EN16931)) == "EN 16931"


def test_user_text_in_the_metadata_is_escaped() -> None:
    invoice = german_b2b(number='RE-<1>&"2"')
    data, _ = make(invoice)
    packet = parse_xmp(root(PdfReader(io.BytesIO(data)))["/Metadata"].get_object())
    assert xmp_text(packet, "dc:title/rdf:Alt/rdf:li") == ['Rechnung RE-<1>&"2"']


def test_the_output_intent_carries_an_rgb_icc_profile(reader: PdfReader) -> None:
    (intent,) = root(reader)["/OutputIntents"]
    intent = intent.get_object()
    assert intent["/Type"] == "/OutputIntent"
    assert intent["/S"] == "/GTS_PDFA1"
    assert intent["/OutputConditionIdentifier"]
    profile = intent["/DestOutputProfile"].get_object()
    assert profile["/N"] == 3
    icc = profile.get_data()
    assert icc == fx.ICC_PROFILE.read_bytes()
    assert icc[36:40] == b"acsp" and icc[16:20] == b"RGB " and icc[12:16] == b"mntr"
    assert int.from_bytes(icc[:4], "big") == len(icc)
    assert icc[8] == 2  # ICC version 2.x: fits every PDF/A part
    assert (fx.ICC_PROFILE.parent / "LICENSE.txt").is_file()


# ------------------------------------------------------------------------------ PDF/A rules


def all_objects(reader: PdfReader) -> list[Any]:
    """Every dictionary and array reachable from the trailer (streams' dictionaries too)."""
    seen: set[int] = set()
    out: list[Any] = []
    todo: list[Any] = [reader.trailer]
    while todo:
        obj = todo.pop()
        if isinstance(obj, IndirectObject):
            if obj.idnum in seen:
                continue
            seen.add(obj.idnum)
            obj = obj.get_object()
        if isinstance(obj, DictionaryObject):
            out.append(obj)
            todo.extend(v for k, v in obj.items() if k != "/Parent")
        elif isinstance(obj, ArrayObject):
            out.append(obj)
            todo.extend(obj)
    return out


def test_no_encryption_no_javascript_no_actions(reader: PdfReader, made: Any) -> None:
    assert "/Encrypt" not in reader.trailer
    assert not reader.is_encrypted
    keys = {str(k) for obj in all_objects(reader) if isinstance(obj, DictionaryObject) for k in obj}
    assert not keys & {"/JavaScript", "/JS", "/AA", "/OpenAction", "/Launch", "/Encrypt"}
    assert b"/JavaScript" not in made[0]


def test_header_trailer_and_id(reader: PdfReader, made: Any) -> None:
    data = made[0]
    version = re.match(rb"%PDF-(\d)\.(\d)\n%[\x80-\xff]{4}", data)
    assert version is not None and (int(version[1]), int(version[2])) >= (1, 4)
    assert data.rstrip().endswith(b"%%EOF")
    first, second = trailer(reader)["/ID"]
    assert len(first.original_bytes) == 16 and first.original_bytes == second.original_bytes


def test_every_font_is_embedded(made: Any) -> None:
    assert_all_embedded(made[0])


def test_cjk_text_is_embedded_too() -> None:
    seller = replace(german_b2b().seller, name="東京商事株式会社")
    data, _ = make(german_b2b(seller=seller))
    fonts = assert_all_embedded(data)
    assert any(name.endswith("+DroidSansFallback") for name in fonts)


def _image_bytes(kind: str) -> Logo:
    """A logo in a colour mode ReportLab would not write as DeviceRGB or DeviceGray itself."""
    from PIL import Image

    buf = io.BytesIO()
    if kind == "rgba-png":
        return Logo("image/png", png_bytes())
    if kind.startswith("cmyk-jpeg"):
        extra = {"icc_profile": b"not an ICC profile"} if kind.endswith("icc") else {}
        Image.new("CMYK", (60, 20), (100, 60, 0, 40)).save(buf, "JPEG", **extra)
        return Logo("image/jpeg", buf.getvalue())
    if kind == "palette-png":
        im = Image.new("P", (60, 20), 1)
        im.putpalette([0, 0, 0, 31, 58, 95])
        im.save(buf, "PNG", transparency=0)
    else:  # 16-bit grey
        Image.new("I;16", (60, 20), 30000).save(buf, "PNG")
    return Logo("image/png", buf.getvalue())


@pytest.mark.parametrize(
    "kind", ["rgba-png", "cmyk-jpeg", "cmyk-jpeg-damaged-icc", "palette-png", "grey16-png"]
)
def test_a_logo_keeps_the_pdf_in_rgb(kind: str) -> None:
    """Whatever the logo's colour mode, the PDF/A paints only DeviceRGB and DeviceGray (a CMYK
    JPEG is converted, never passed through as DeviceCMYK), the same bytes every time."""
    data, _ = make(german_b2b(logo=_image_bytes(kind)))
    assert make(german_b2b(logo=_image_bytes(kind)))[0] == data
    reader = PdfReader(io.BytesIO(data))
    images: list[Any] = [
        obj
        for obj in all_objects(reader)
        if isinstance(obj, DictionaryObject) and obj.get("/Subtype") == "/Image"
    ]
    assert images  # the logo (and its soft mask)
    for image in images:
        assert image["/ColorSpace"] in ("/DeviceRGB", "/DeviceGray")
        assert "/Interpolate" not in image or image["/Interpolate"] is False
    assert b"/DeviceCMYK" not in data
    assert_all_embedded(data)


def test_the_same_document_gives_the_same_bytes(made: tuple[bytes, bytes]) -> None:
    again, _ = make()
    assert again == made[0]
    other, _ = make(german_b2b(number="RE-2026-0043"))
    assert other != made[0]
    first = trailer(PdfReader(io.BytesIO(made[0])))["/ID"][0].original_bytes
    assert trailer(PdfReader(io.BytesIO(other)))["/ID"][0].original_bytes != first


def test_the_pages_are_those_of_render_pdf(reader: PdfReader) -> None:
    plain = PdfReader(io.BytesIO(render_pdf(german_b2b())))
    assert len(reader.pages) == len(plain.pages)
    for page, original in zip(reader.pages, plain.pages, strict=True):
        assert page.get_contents().get_data() == original.get_contents().get_data()  # type: ignore[union-attr]


# --------------------------------------------------------------------------------- the rules


def test_an_invoice_that_breaks_a_rule_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from invoiceflow.domain import en16931

    calls: list[str] = []

    def check(invoice: Any, syntax: str) -> list[Problem]:
        calls.append(syntax)
        return [Problem("/buyer_reference", "no buyer reference", rule="BR-DE-15")]

    monkeypatch.setattr(en16931, "check", check)
    with pytest.raises(BusinessRuleViolation) as raised:
        fx.render_facturx(german_b2b())
    assert calls == ["facturx"]
    assert [p.rule for p in raised.value.problems] == ["BR-DE-15"]
