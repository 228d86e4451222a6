"""The invoice as a Factur-X 1.0.7 / ZUGFeRD 2.3 hybrid e-invoice: :func:`render_facturx`.

The PDF of :func:`invoiceflow.render.pdf.render_pdf` (every font embedded, a TrueType subset)
made PDF/A-3b by post-processing it with pypdf, with the CII of
:func:`invoiceflow.einvoice.cii.cii_xml` embedded as ``factur-x.xml`` (``xrechnung.xml`` when
the CII carries the XRechnung profile, as ZUGFeRD 2.3 requires of its XRECHNUNG profile):

- XMP metadata (uncompressed) with the PDF/A identification (``pdfaid:part`` 3,
  ``pdfaid:conformance`` B), the document information dictionary's entries mirrored
  (``dc:title``, ``dc:creator``, ``dc:description``, ``pdf:Keywords``, ``pdf:Producer``,
  ``xmp:CreatorTool``, ``xmp:CreateDate``/``ModifyDate``), the Factur-X properties
  (``fx:DocumentType`` INVOICE, ``fx:DocumentFileName`` the embedded file's name,
  ``fx:Version`` 1.0,
  ``fx:ConformanceLevel`` "EN 16931", or "XRECHNUNG" when the CII carries the XRechnung
  profile) and the PDF/A extension schema description of the ``fx`` namespace;
- an output intent (``GTS_PDFA1``) with the sRGB ICC profile (version 2.3, zlib licence,
  ``render/icc/``), ``/N 3``: the renderer paints in DeviceRGB (and gray);
- the XML as an embedded file (``/Subtype /text#2Fxml``, ``/Params`` with ``/ModDate``,
  ``/Size`` and ``/CheckSum``), its file specification with ``/AFRelationship
  /Alternative`` (Factur-X: ``/Data`` is required only for MINIMUM and BASIC WL; from BASIC
  on the XML is an alternative, complete representation of the invoice, and ZUGFeRD
  recommends ``/Alternative`` for EN 16931 and XRechnung), listed in the catalog's ``/AF``
  array and its ``/Names`` ``/EmbeddedFiles`` tree;
- header ``%PDF-1.7`` (PDF/A-3 is based on ISO 32000-1), a ``/ID`` in the trailer, no
  encryption, no JavaScript or actions, no ``/Trapped`` entry.

Reproducible: every date is the invoice's issue date (00:00 UTC), as in :func:`render_pdf`;
the ``/ID`` is a digest of the rendered PDF and the XML; so the same document gives the same
bytes.
"""

from __future__ import annotations

import hashlib
import io
import re
from functools import cache
from pathlib import Path
from xml.sax.saxutils import escape

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    StreamObject,
    TextStringObject,
)

from invoiceflow.domain.en16931 import require_conformance
from invoiceflow.domain.model import Invoice
from invoiceflow.einvoice.cii import cii_xml
from invoiceflow.errors import RenderError
from invoiceflow.render.pdf import check_pdf, render_pdf

__all__ = ["FACTURX_FILENAME", "XRECHNUNG_FILENAME", "facturx_pdf", "render_facturx"]

#: the name of the embedded CII (Factur-X 1.0.7 and ZUGFeRD 2.3 alike)
FACTURX_FILENAME = "factur-x.xml"
#: the name of the embedded CII of ZUGFeRD 2.3's XRECHNUNG profile
XRECHNUNG_FILENAME = "xrechnung.xml"
FX_NAMESPACE = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
ICC_PROFILE = Path(__file__).with_name("icc") / "sRGB.icc"

#: fx:ConformanceLevel by the CII's specification identifier (BT-24)
_XRECHNUNG_GUIDELINE = "urn:xeinkauf.de:kosit:xrechnung"
_PDF_DATE = re.compile(r"^D:(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})([+-])(\d{2})'(\d{2})'?$")
_GUIDELINE = re.compile(
    rb"<ram:GuidelineSpecifiedDocumentContextParameter>\s*<ram:ID>([^<]*)</ram:ID>"
)


def render_facturx(invoice: Invoice) -> bytes:
    """The invoice as Factur-X PDF/A-3b bytes; the same document always gives the same bytes.

    Raises :class:`~invoiceflow.errors.BusinessRuleViolation` (422) when the invoice breaks an
    EN 16931 rule, :class:`~invoiceflow.errors.RenderError` when it cannot be rendered."""
    require_conformance(invoice, "facturx")  # the CII's rules: cii_xml needs no second check
    return facturx_pdf(render_pdf(invoice), cii_xml(invoice))


def facturx_pdf(pdf: bytes, xml: bytes) -> bytes:
    """``pdf`` (a PDF of :func:`render_pdf`) made PDF/A-3b with ``xml`` (a CII document)
    embedded as ``factur-x.xml`` (``xrechnung.xml`` for the XRechnung profile). The dates are
    the PDF's creation date."""
    reader = PdfReader(io.BytesIO(pdf))
    if reader.is_encrypted:
        raise RenderError("an encrypted PDF cannot be made PDF/A")
    writer = PdfWriter(clone_from=reader)
    writer.pdf_header = b"%PDF-1.7"
    doc_info = writer._info
    if doc_info is None:
        raise RenderError("the PDF has no document information to make its PDF/A metadata from")
    if "/Trapped" in doc_info:  # PDF/A: only with an XMP pdf:Trapped of the same value
        del doc_info[NameObject("/Trapped")]
    info = {str(k): str(v.get_object()) for k, v in doc_info.items()}
    created = info.get("/CreationDate", "")
    if not _PDF_DATE.match(created):
        raise RenderError("the PDF has no creation date to make its PDF/A metadata from")
    if "/ModDate" not in info:
        info["/ModDate"] = created
        writer.add_metadata({"/ModDate": created})

    catalog = writer.root_object
    for key in ("/OpenAction", "/AA"):  # PDF/A: no actions (ReportLab writes none)
        if key in catalog:
            del catalog[NameObject(key)]
    level = conformance_level(xml)
    filename = XRECHNUNG_FILENAME if level == "XRECHNUNG" else FACTURX_FILENAME
    catalog[NameObject("/Metadata")] = writer._add_object(_metadata_stream(info, level, filename))
    catalog[NameObject("/OutputIntents")] = ArrayObject(
        [writer._add_object(_output_intent(writer))]
    )
    filespec = writer._add_object(_filespec(writer, xml, filename, info["/ModDate"]))
    catalog[NameObject("/AF")] = ArrayObject([filespec])
    names = catalog.get("/Names")
    names = DictionaryObject() if names is None else names.get_object()
    if "/JavaScript" in names:
        del names[NameObject("/JavaScript")]
    names[NameObject("/EmbeddedFiles")] = DictionaryObject(
        {NameObject("/Names"): ArrayObject([TextStringObject(filename), filespec])}
    )
    catalog[NameObject("/Names")] = names

    digest = ByteStringObject(hashlib.sha256(pdf + b"\0" + xml).digest()[:16])
    writer._ID = ArrayObject([digest, ByteStringObject(bytes(digest))])
    out = io.BytesIO()
    writer.write(out)
    data = out.getvalue()
    check_pdf(data)
    return data


# --------------------------------------------------------------------------------------------
# the parts
# --------------------------------------------------------------------------------------------


@cache
def _icc_profile() -> bytes:
    return ICC_PROFILE.read_bytes()


def _output_intent(writer: PdfWriter) -> DictionaryObject:
    profile = DecodedStreamObject()
    profile.set_data(_icc_profile())
    profile[NameObject("/N")] = NumberObject(3)
    compressed = profile.flate_encode()
    return DictionaryObject(
        {
            NameObject("/Type"): NameObject("/OutputIntent"),
            NameObject("/S"): NameObject("/GTS_PDFA1"),
            NameObject("/OutputConditionIdentifier"): TextStringObject("sRGB IEC61966-2.1"),
            NameObject("/RegistryName"): TextStringObject("http://www.color.org"),
            NameObject("/Info"): TextStringObject("sRGB IEC61966-2.1"),
            NameObject("/DestOutputProfile"): writer._add_object(compressed),
        }
    )


def _filespec(writer: PdfWriter, xml: bytes, filename: str, mod_date: str) -> DictionaryObject:
    embedded = DecodedStreamObject()
    embedded.set_data(xml)
    stream: StreamObject = embedded.flate_encode()
    stream.update(
        {
            NameObject("/Type"): NameObject("/EmbeddedFile"),
            NameObject("/Subtype"): NameObject("/text/xml"),  # written as /text#2Fxml
            NameObject("/Params"): DictionaryObject(
                {
                    NameObject("/ModDate"): TextStringObject(mod_date),
                    NameObject("/Size"): NumberObject(len(xml)),
                    NameObject("/CheckSum"): ByteStringObject(
                        hashlib.md5(xml, usedforsecurity=False).digest()  # the PDF checksum
                    ),
                }
            ),
        }
    )
    ref = writer._add_object(stream)
    name = TextStringObject(filename)
    return DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Filespec"),
            NameObject("/F"): name,
            NameObject("/UF"): name,
            NameObject("/Desc"): TextStringObject("Factur-X invoice (CII, EN 16931)"),
            NameObject("/AFRelationship"): NameObject("/Alternative"),
            NameObject("/EF"): DictionaryObject({NameObject("/F"): ref, NameObject("/UF"): ref}),
        }
    )


def conformance_level(xml: bytes) -> str:
    """fx:ConformanceLevel of a CII: "XRECHNUNG" for the XRechnung profile, else "EN 16931"."""
    match = _GUIDELINE.search(xml)
    guideline = match.group(1).decode("utf-8").strip() if match else ""
    return "XRECHNUNG" if _XRECHNUNG_GUIDELINE in guideline else "EN 16931"


def _xmp_date(pdf_date: str) -> str:
    """D:20261124000000+00'00' -> 2026-11-24T00:00:00+00:00"""
    m = _PDF_DATE.match(pdf_date)
    if m is None:
        raise RenderError(f"the PDF date {pdf_date!r} has an unexpected form")
    y, mo, d, h, mi, s, sign, oh, om = m.groups()
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}{sign}{oh}:{om}"


def _metadata_stream(info: dict[str, str], level: str, filename: str) -> StreamObject:
    stream = DecodedStreamObject()
    stream.set_data(xmp(info, level, filename))
    stream.update(
        {NameObject("/Type"): NameObject("/Metadata"), NameObject("/Subtype"): NameObject("/XML")}
    )
    return stream


def xmp(info: dict[str, str], level: str, filename: str) -> bytes:
    """The XMP packet: the document information ``info`` (PDF names as keys) mirrored, the
    PDF/A-3b identification, the Factur-X properties and their PDF/A extension schema."""

    def e(text: str) -> str:
        return escape(text, {'"': "&quot;"})

    def alt(value: str) -> str:
        return f'<rdf:Alt><rdf:li xml:lang="x-default">{e(value)}</rdf:li></rdf:Alt>'

    dc = []
    if "/Title" in info:
        dc.append(f"<dc:title>{alt(info['/Title'])}</dc:title>")
    if "/Author" in info:
        dc.append(
            f"<dc:creator><rdf:Seq><rdf:li>{e(info['/Author'])}</rdf:li></rdf:Seq></dc:creator>"
        )
    if "/Subject" in info:
        dc.append(f"<dc:description>{alt(info['/Subject'])}</dc:description>")
    pdf = []
    if "/Producer" in info:
        pdf.append(f"<pdf:Producer>{e(info['/Producer'])}</pdf:Producer>")
    if "/Keywords" in info:
        pdf.append(f"<pdf:Keywords>{e(info['/Keywords'])}</pdf:Keywords>")
    xmp_basic = []
    if "/Creator" in info:
        xmp_basic.append(f"<xmp:CreatorTool>{e(info['/Creator'])}</xmp:CreatorTool>")
    created, modified = _xmp_date(info["/CreationDate"]), _xmp_date(info["/ModDate"])
    xmp_basic += [
        f"<xmp:CreateDate>{created}</xmp:CreateDate>",
        f"<xmp:ModifyDate>{modified}</xmp:ModifyDate>",
        f"<xmp:MetadataDate>{modified}</xmp:MetadataDate>",
    ]
    fx_properties = "".join(
        '<rdf:li rdf:parseType="Resource">'
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{description}</pdfaProperty:description>"
        "</rdf:li>\n"
        for name, description in (
            ("DocumentFileName", "The name of the embedded XML document"),
            ("DocumentType", "The type of the hybrid document in capital letters, e.g. INVOICE"),
            ("Version", "The version of the Factur-X XML schema"),
            ("ConformanceLevel", "The conformance level of the embedded Factur-X data"),
        )
    )
    dc_text, pdf_text, xmp_text = ("".join(x + "\n" for x in part) for part in (dc, pdf, xmp_basic))
    packet = f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
<pdfaid:part>3</pdfaid:part>
<pdfaid:conformance>B</pdfaid:conformance>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
{dc_text}</rdf:Description>
<rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
{pdf_text}</rdf:Description>
<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
{xmp_text}</rdf:Description>
<rdf:Description rdf:about="" xmlns:fx="{FX_NAMESPACE}">
<fx:DocumentType>INVOICE</fx:DocumentType>
<fx:DocumentFileName>{e(filename)}</fx:DocumentFileName>
<fx:Version>1.0</fx:Version>
<fx:ConformanceLevel>{e(level)}</fx:ConformanceLevel>
</rdf:Description>
<rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/" \
xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" \
xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
<pdfaExtension:schemas>
<rdf:Bag>
<rdf:li rdf:parseType="Resource">
<pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>
<pdfaSchema:namespaceURI>{FX_NAMESPACE}</pdfaSchema:namespaceURI>
<pdfaSchema:prefix>fx</pdfaSchema:prefix>
<pdfaSchema:property>
<rdf:Seq>
{fx_properties}</rdf:Seq>
</pdfaSchema:property>
</rdf:li>
</rdf:Bag>
</pdfaExtension:schemas>
</rdf:Description>
</rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
    return packet.encode("utf-8")
