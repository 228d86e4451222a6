"""JSON in, a validated :class:`~invoiceflow.domain.model.Invoice` out, or every problem at once.

``parse_invoice`` accepts the canonical document and the two foreign formats
(:mod:`.dialects`). Structure is checked against ``invoice.v1.schema.json`` (the same file
integrators use), meaning is checked here (real dates, known currency and locale, signs,
ranges, the logo's bytes, client-sent totals). Every problem carries a JSON pointer into the
client's own document and a sentence for a human.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from importlib import resources
from typing import Any

from invoiceflow.domain import dialects
from invoiceflow.domain.limits import DEFAULT_MAX_BYTES, MAX_LOGO_PIXELS
from invoiceflow.domain.model import (
    DEFAULT_LOCALE,
    VAT_CATEGORIES,
    Branding,
    Contact,
    Discount,
    DocumentReference,
    Identifier,
    Invoice,
    LineItem,
    Logo,
    Party,
    PaymentDetails,
    Period,
    PostalAddress,
    TaxExemption,
    assemble,
    to_json,
)
from invoiceflow.domain.money import is_known_currency, minor_unit
from invoiceflow.domain.totals import compute_totals
from invoiceflow.errors import (
    MalformedJSON,
    PayloadTooLarge,
    Problem,
    TotalsMismatch,
    ValidationError,
)
from invoiceflow.records import record

#: the quantity of an item that gives none (invoice.v1.schema.json states the same default)
DEFAULT_QUANTITY = "1"
#: a spreadsheet cell holds 15 significant digits; every amount and derived amount must fit
MAX_SIGNIFICANT_DIGITS = 15
#: the largest line or invoice amount (exclusive): 15 digits even with 3 decimals (KWD)
MAX_AMOUNT = Decimal(10) ** 12
#: any number in a document: at most this many characters of JSON text and an exponent of at
#: most this size either way; checked on the raw text before any Decimal exists, so a number
#: like 1e999999999 (11 bytes that expand to a billion digits) costs nothing
MAX_NUMBER_CHARS = 64
MAX_NUMBER_EXPONENT = 64
#: the deepest nesting a document may have (an invoice needs 4 levels)
MAX_DEPTH = 32
#: the first date a spreadsheet can show (Excel's 1900 date system counts a 1900-02-29 that
#: never was, so earlier serial numbers mean other days than in every other calendar)
FIRST_DATE = date(1900, 3, 1)
#: fields whose text may span several lines; every other string is one line (payment terms:
#: XRechnung's Skonto lines, ``#SKONTO#TAGE=14#PROZENT=2.00#``, each end with a line break)
_MULTILINE = frozenset({"description", "notes", "terms", "note", "payment_terms"})
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
#: U+FFFE and U+FFFF (XML 1.0 forbids them: a workbook holding one is not XML) and the other
#: Unicode noncharacters (U+FDD0..U+FDEF, U+nFFFE/U+nFFFF: never meant for interchange)
_NONCHARACTER = re.compile(
    "[\ufdd0-\ufdef\ufffe\uffff"
    + "".join(chr(plane << 16 | 0xFFFE) + chr(plane << 16 | 0xFFFF) for plane in range(1, 17))
    + "]"
)
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029\x85]")
#: any of the three above: most strings have none, and one search tells
_SUSPECT = re.compile("|".join(p.pattern for p in (_CONTROL, _NONCHARACTER, _LINE_BREAK)))
MAX_LOGO_BYTES = 512 * 1024
_AMOUNT = re.compile(r"^-?[0-9]{1,15}(\.[0-9]{1,6})?$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_LOGO_URI = re.compile(r"^data:image/(png|jpeg);base64,")
_MAGIC = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}


class BadNumber(str):
    """A JSON number validation reports wherever it stands (keeps its text for the message)."""

    @property
    def problem(self) -> str:
        raise NotImplementedError


class NonFinite(BadNumber):
    """What ``NaN``/``Infinity`` in the JSON text parse to, so validation can point at them."""

    @property
    def problem(self) -> str:
        return f"{self} is not allowed: amounts must be finite numbers"


class OutOfRange(BadNumber):
    """A number too long or with too large an exponent (the text is shortened for messages)."""

    @property
    def problem(self) -> str:
        return (
            f"the number {self} is out of range: a number may have at most "
            f"{MAX_NUMBER_CHARS} characters and an exponent of at most "
            f"{MAX_NUMBER_EXPONENT}; amounts have at most 15 digits before and 6 after "
            "the decimal point"
        )


def _number(text: str) -> Decimal | OutOfRange:
    """The ``parse_float``/``parse_int`` hook: sees the raw text, bounds it before any
    arithmetic (building the Decimal is cheap; formatting or computing with it is not)."""
    if len(text) > MAX_NUMBER_CHARS:
        return OutOfRange(f"{text[:12]}...({len(text):,} characters)")
    value = Decimal(text)
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int) or abs(exponent) > MAX_NUMBER_EXPONENT:
        return OutOfRange(text)
    return value


def _depth_problem(value: Any) -> bool:
    """Whether the parsed document (what json.loads made) nests deeper than MAX_DEPTH
    (checked without recursion, one level of objects and arrays at a time: only they add
    depth)."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            return True
        level = [  # exact types: what json.loads makes (isinstance of a str is much slower)
            child
            for item in level
            for child in (item.values() if type(item) is dict else item)
            if type(child) in _CONTAINERS
        ]
    return False


#: what JSON objects and arrays parse to
_CONTAINERS = (dict, list)
#: isinstance of these is isinstance of Mapping, asked of dict first (a JSON object is a dict;
#: the ABC's check costs ten times as much)
_OBJECT = (dict, Mapping)
_CONTAINER = (dict, list, Mapping)


def _identity(pointer: str) -> str:
    return pointer


@record
class Document:
    invoice: Invoice
    #: canonical | legacy | invoice-generator
    source_format: str
    #: a pointer into the canonical document (a broken business rule's) -> the field of the
    #: client's own document, or its closest parent that exists in the client's format
    #: (:func:`.dialects.legacy_rule_pointers`, :func:`.dialects.generator_rule_pointers`);
    #: the identity for a canonical document
    client_pointer: Callable[[str], str] = _identity
    #: the document came without a number: ``invoice.number`` is ``""`` until the server
    #: assigns the next number of the owner's series when it accepts the invoice
    needs_number: bool = False

    @cached_property
    def canonical(self) -> dict[str, Any]:
        """The invoice's canonical JSON (:func:`~invoiceflow.domain.model.to_json`), made
        once for the checks and the completed document that need it (never modify it)."""
        return to_json(self.invoice)

    def client_problems(self, problems: Iterable[Problem]) -> list[Problem]:
        """``problems`` (about the canonical invoice) pointing into the client's document."""
        moved = (Problem(self.client_pointer(p.pointer), p.message, p.rule) for p in problems)
        return list(dict.fromkeys(moved))


def load_json(data: bytes | str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """Parse JSON text with every number as Decimal. Raises PayloadTooLarge / MalformedJSON."""
    size = len(data.encode() if isinstance(data, str) else data)
    if size > max_bytes:
        raise PayloadTooLarge(f"the document is {size:,} bytes; the limit is {max_bytes:,}")
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data
        doc = json.loads(text, parse_float=_number, parse_int=_number, parse_constant=NonFinite)
    except UnicodeDecodeError as exc:
        raise MalformedJSON(
            f"the document is not UTF-8: {exc.reason} at byte {exc.start}"
        ) from None
    except json.JSONDecodeError as exc:
        # some messages end in "at" ("Unterminated string starting at"): one "at" is enough
        where = f"line {exc.lineno} column {exc.colno}"
        raise MalformedJSON(f"malformed JSON: {exc.msg.removesuffix(' at')} at {where}") from None
    except RecursionError:  # thousands of nested brackets
        too_deep = True
    else:
        too_deep = _depth_problem(doc)
    if too_deep:
        raise MalformedJSON(
            f"the document is nested too deeply (at most {MAX_DEPTH} levels of objects and arrays)"
        )
    return doc


def parse_invoice(
    data: bytes | str | Mapping[str, Any],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    defaults: Mapping[str, Any] | None = None,
) -> Document:
    """The one entry point: raises ValidationError (422) listing every problem.

    ``defaults``: the owner's branding settings (:func:`check_settings` has let them
    through), filling the fields the document leaves out (:func:`apply_defaults`) before it is
    checked; the currency is required unless they have one."""
    doc = data if isinstance(data, Mapping) else load_json(data, max_bytes=max_bytes)
    if not isinstance(doc, Mapping):
        raise ValidationError([Problem("", "the document must be a JSON object")])
    kind = dialects.detect(doc)
    to_client: Callable[[str], str] = _identity
    early: list[tuple[str, str]] = []
    sent_totals: dict[str, Any] | None = None
    canonical: Mapping[str, Any] = doc
    if kind == "legacy":
        canonical, to_client, sent_totals = dialects.from_legacy(doc)
    elif kind == "invoice-generator":
        canonical, to_client, early = dialects.from_invoice_generator(doc)

    if defaults:
        canonical = apply_defaults(canonical, defaults)
    problems = [Problem(p, m) for p, m in early]
    amounts: Amounts = {}  # each amount text decoded once, by the checks, for the model
    problems += [Problem(to_client(p), m) for p, m in _check(canonical, amounts)]
    if "currency" not in canonical:
        problems.append(Problem(to_client("/currency"), MISSING_CURRENCY))
    if problems:
        raise ValidationError(_dedupe(problems))
    invoice = _build(canonical, amounts)
    problems = [Problem(to_client(p), m) for p, m in _check_totals(invoice)]
    if problems:
        raise ValidationError(problems)
    if sent_totals is not None:
        _check_sent_totals(invoice, sent_totals)
    rule_pointers = {
        "legacy": dialects.legacy_rule_pointers,
        "invoice-generator": dialects.generator_rule_pointers,
    }.get(kind)
    needs_number = "number" not in canonical
    if rule_pointers is None:
        return Document(invoice=invoice, source_format=kind, needs_number=needs_number)
    return Document(
        invoice=invoice,
        source_format=kind,
        client_pointer=rule_pointers(doc),
        needs_number=needs_number,
    )


def load_canonical(doc: Mapping[str, Any]) -> Invoice:
    """The Invoice of a canonical document this service wrote itself from a parsed one
    (:func:`~invoiceflow.domain.model.to_json` of an accepted invoice: the completed
    document the render steps read), built without the schema and meaning checks that
    :func:`parse_invoice` ran when it was accepted. Never for a client's document: one that
    breaks the schema raises KeyError or worse here, not a list of problems."""
    return _build(doc)


def _dedupe(problems: list[Problem]) -> list[Problem]:
    """Drop repeats and put the problems in document order (/items/2 before /items/10)."""

    def key(p: Problem) -> list[tuple[int, int | str]]:
        # an index is ASCII digits; "²" or "①" are digits to str.isdigit but not to int()
        return [
            (0, int(s)) if s.isascii() and s.isdigit() else (1, s) for s in p.pointer.split("/")
        ]

    return sorted(dict.fromkeys(problems), key=key)


# ------------------------------------------------------------------------ structure


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    text = resources.files("invoiceflow.domain").joinpath("invoice.v1.schema.json").read_text()
    return dict(json.loads(text))


@lru_cache(maxsize=1)
def _validator() -> Any:
    """The full validator (jsonschema): every problem of an invalid document, with its path."""
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


@lru_cache(maxsize=1)
def _fast_validator() -> Any:
    """The compiled validator (jsonschema-rs): only a verdict, many times faster than the
    full one. Formats are annotations, as for :func:`_validator` (the meaning checks hold the
    dates to the calendar)."""
    import jsonschema_rs

    return jsonschema_rs.Draft202012Validator(schema(), validate_formats=False)


def schema_valid(doc: Any) -> bool:
    """Whether ``doc`` keeps to the invoice schema, by the compiled validator (the fast path
    for a valid document). False too for a document it cannot read (a lone surrogate is no
    Rust string): the full validator decides those."""
    try:
        return bool(_fast_validator().is_valid(doc))
    except (ValueError, TypeError, OverflowError):
        return False


def _schema_problems(doc: Any) -> list[tuple[str, str]]:
    """The schema's problems of ``doc``: none when the fast path finds it valid, else every
    one from the full validator, in document order."""
    if schema_valid(doc):
        return []
    out: list[tuple[str, str]] = []
    for err in sorted(_validator().iter_errors(doc), key=lambda e: list(map(str, e.path))):
        out.extend(_humanise(err))
    return out


def _pointer(path: Any) -> str:
    return "".join(f"/{str(p).replace('~', '~0').replace('/', '~1')}" for p in path)


def _humanise(err: Any) -> Iterator[tuple[str, str]]:
    where = _pointer(err.absolute_path)
    v, value = err.validator, err.instance
    if isinstance(value, BadNumber):
        yield where, value.problem
    elif v == "anyOf" and where.endswith("/address"):
        yield from _address_problems(err, where, value)
    elif v == "required":
        for name in err.validator_value:
            if isinstance(value, Mapping) and name not in value:
                yield f"{where}/{name}", "is required"
    elif v == "additionalProperties":
        allowed = err.schema.get("properties", {})
        for name in value:
            if name not in allowed and where == "/tax_exemptions":
                yield f"{where}/{name}", f"{name!r} is not a VAT category ({_CATEGORIES})"
            elif name not in allowed:
                yield f"{where}/{name}", f"unknown field {name!r}"
    elif v == "anyOf" and "anyOf" in err.schema:
        yield (
            where,
            (
                'must be a decimal number (a JSON number or a string like "12.50", '
                "at most 15 digits before and 6 after the point)"
            ),
        )
    elif v == "maxLength":
        yield where, f"must be at most {err.validator_value:,} characters (got {len(value):,})"
    elif v == "minLength":
        yield where, "must not be empty"
    elif v == "maxItems" and where == "/items":
        yield where, f"at most {err.validator_value:,} line items are allowed (got {len(value):,})"
    elif v == "maxItems":
        yield where, f"at most {err.validator_value} entries are allowed (got {len(value)})"
    elif v == "minItems":
        yield where, "needs at least one line item" if where == "/items" else "must not be empty"
    elif v == "type":
        yield where, f"must be of type {err.validator_value} (got {_json_type(value)})"
    elif v == "pattern" and where.endswith("/currency"):
        yield where, f"{value!r} is not an ISO 4217 currency code (three capital letters)"
    elif v == "pattern" and where.endswith("/logo"):
        yield (
            where,
            ("the logo must be a data: URI of a PNG or JPEG image (data:image/png;base64,...)"),
        )
    elif v == "pattern" and where.endswith(("/locale", "/language")):
        yield where, f"{value!r} is not a BCP 47 language tag such as en-US or de-DE"
    elif v == "pattern" and where.endswith("/country"):
        yield where, f"{value!r} is not an ISO 3166-1 country code (two capital letters)"
    elif v == "pattern" and where.endswith("/unit_code"):
        yield (
            where,
            f"{value!r} is not a UN/ECE Recommendation 20 unit code (1-3 capital letters or "
            "digits, e.g. C62, HUR, KGM)",
        )
    elif v == "pattern" and where.endswith("/means_code"):
        yield (
            where,
            f"{value!r} is not a UNTDID 4461 payment means code (1-3 digits or capital "
            "letters, e.g. 58, 30)",
        )
    elif v == "enum" and where.endswith(("/layout", "/font")):
        yield where, f"must be one of {', '.join(err.validator_value)} (got {_shown(value)})"
    elif v == "pattern" and where.endswith("/accent_color"):
        yield where, f"{_shown(value)} is not a colour in the form #RRGGBB (e.g. #1F3A5F)"
    elif v == "enum" and where.endswith("/document_type"):
        yield where, f"must be one of invoice, credit_note, corrected (got {_shown(value)})"
    elif v == "enum":
        yield where, f"{_shown(value)} is not a VAT category ({_CATEGORIES})"
    elif v in ("minProperties", "maxProperties") and "percent" in err.schema.get("properties", {}):
        yield where, 'a discount needs exactly one of "percent" or "amount"'
    elif v == "minProperties" and where.startswith("/tax_exemptions/"):
        yield where, "needs a reason (BT-120) or a code (BT-121)"
    elif v == "const":
        yield where, f"must be {err.validator_value!r}"
    else:
        yield where, err.message


def _address_problems(err: Any, where: str, value: Any) -> Iterator[tuple[str, str]]:
    """An address is either free lines (a list) or a structured object: report what is
    wrong with the form the client chose."""
    branch = 0 if isinstance(value, list) else 1 if isinstance(value, Mapping) else None
    if branch is None:
        yield (
            where,
            (
                "must be a list of address lines or an object with lines, city, postal_code, "
                f"subdivision and country (got {_json_type(value)})"
            ),
        )
        return
    for sub in err.context:
        if sub.relative_schema_path and sub.relative_schema_path[0] == branch:
            yield from _humanise(sub)


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, Decimal | int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    return "array" if isinstance(value, list) else "object"


def _check(doc: Mapping[str, Any], memo: Amounts | None = None) -> list[tuple[str, str]]:
    out = _schema_problems(doc)
    out.extend(_check_meaning(doc, memo))
    return out


# -------------------------------------------------------------------------- meaning


#: a document's amount strings decoded so far (``"20"`` -> ``Decimal("20")``): equal text, equal
#: Decimal, so the meaning checks and the model share one decoding of each text
Amounts = dict[str, Decimal]


def _dec(value: Any, memo: Amounts | None = None) -> Decimal | None:
    """The Decimal for a schema-valid amount, None for anything else (already reported).
    ``memo``: the document's decoded amount strings (read and filled here)."""
    if type(value) is str:  # the common case first (a BadNumber is a str subclass)
        number = memo.get(value) if memo is not None else None
        if number is None and _AMOUNT.match(value):
            number = Decimal(value)  # cannot fail on what _AMOUNT matches
            if memo is not None:
                memo[value] = number
        return number
    if isinstance(value, bool) or isinstance(value, BadNumber):
        return None
    if isinstance(value, Decimal | int):
        amount = value if isinstance(value, Decimal) else Decimal(value)
        # within the bounds, its plain notation is one _AMOUNT matches (tests/domain/
        # test_validate_once.py holds that), so it is not written out to be matched
        if not amount.is_finite() or not _within_amount_bounds(amount):
            return None
        return amount
    if isinstance(value, str) and _AMOUNT.match(value):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def _within_amount_bounds(value: Decimal) -> bool:
    """Whether the digits and exponent of a finite value allow an amount (15 digits before,
    6 after the point): decided on the tuple, before ``format`` writes out all the digits."""
    digits, exponent = value.as_tuple()[1:]
    assert isinstance(exponent, int)
    return (len(digits) <= 21 and -6 <= exponent and len(digits) + exponent <= 15) or (
        digits == (0,) and -6 <= exponent <= MAX_NUMBER_EXPONENT
    )


def _amount_problem(value: Any) -> str | None:
    return _checked_amount(value)[0]


def _checked_amount(value: Any, memo: Amounts | None = None) -> tuple[str | None, Decimal | None]:
    """The problem of an amount (None: none) and its :func:`_dec` value, computed once."""
    number = _dec(value, memo)
    if number is None:
        if isinstance(value, Decimal | int) and not isinstance(value, bool):
            if isinstance(value, Decimal) and not value.is_finite():
                return f"{value} is not allowed: amounts must be finite numbers", None
            return "must have at most 15 digits before and 6 after the decimal point", None
        return None, None
    # a text of at most 15 characters has at most 15 digits: no need to count them
    short = type(value) is str and len(value) <= MAX_SIGNIFICANT_DIGITS
    if not short and _significant_digits(number) > MAX_SIGNIFICANT_DIGITS:
        return (
            f"{number} has more than {MAX_SIGNIFICANT_DIGITS} significant digits, more "
            "than a spreadsheet can hold"
        ), number
    return None, number


def _significant_digits(number: Decimal) -> int:
    digits = number.normalize().as_tuple().digits
    return len(digits) if number else 0


def _shown(value: Any) -> str:
    """A client's value, shortened for a message."""
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}... ({len(text):,} characters)"


def _real_date(value: Any) -> date | None:
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _check_strings(value: Any, where: str, key: str = "") -> list[tuple[str, str]]:
    """Control characters and lone surrogates anywhere; line breaks outside the multi-line
    fields (a line break in, say, the invoice number would end up in an email header)."""
    out: list[tuple[str, str]] = []
    if isinstance(value, _CONTAINER):
        _walk_strings(value, where, key, out)
    else:
        _string_problem(value, where, key, out)
    return out


def _walk_strings(
    node: Mapping[str, Any] | list[Any], where: str, key: str, out: list[tuple[str, str]]
) -> None:
    """:func:`_check_strings` of an object or array: a child's pointer is written only when
    it is an object or array or has a problem. A printable string (``str.isprintable``) has
    none of the characters :data:`_SUSPECT` finds (tests/domain/test_parse_shortcuts.py holds
    that for every code point), so most strings cost one C call."""
    in_list = isinstance(node, list)
    pairs = enumerate(node) if isinstance(node, list) else node.items()
    for name, item in pairs:
        if type(item) is str and item.isprintable():
            continue
        child_key = key if in_list else str(name)
        if isinstance(item, _CONTAINER):
            _walk_strings(item, f"{where}/{name}", child_key, out)
        elif isinstance(item, str):
            _string_problem(item, f"{where}/{name}", child_key, out)


def _string_problem(value: Any, where: str, key: str, out: list[tuple[str, str]]) -> None:
    if isinstance(value, BadNumber):
        out.append((where, value.problem))
    elif isinstance(value, str):
        if not _SUSPECT.search(value):
            return
        nonchar = _NONCHARACTER.search(value)
        if _CONTROL.search(value):
            out.append((where, "contains control characters or invalid Unicode"))
        elif nonchar:
            out.append(
                (
                    where,
                    f"contains U+{ord(nonchar.group()):04X}, a Unicode noncharacter that "
                    "XML 1.0 and so the workbook cannot hold",
                )
            )
        elif key not in _MULTILINE and key != "logo" and _LINE_BREAK.search(value):
            out.append(
                (
                    where,
                    "must be a single line (line breaks are allowed only in "
                    "descriptions, notes, terms and payment terms)",
                )
            )


def _check_meaning(
    doc: Mapping[str, Any], memo: Amounts | None = None
) -> Iterator[tuple[str, str]]:
    yield from _check_strings(doc, "")
    yield from _blank_required(doc)
    issue = doc.get("issue_date")
    for key in ("issue_date", "due_date"):
        value = doc.get(key)
        real = _real_date(value)
        if value is not None and real is None:
            yield f"/{key}", f"{_shown(value)} is not a real calendar date in the form YYYY-MM-DD"
        elif real is not None and real < FIRST_DATE:
            yield (
                f"/{key}",
                (
                    f"{real} is too early: dates before {FIRST_DATE} cannot be "
                    "represented in a spreadsheet (the 1900 date system counts a "
                    "29 February 1900 that never was)"
                ),
            )
    due, issued = _real_date(doc.get("due_date")), _real_date(issue)
    if due and issued and due < issued:
        yield "/due_date", f"the due date {due} is before the issue date {issued}"
    yield from _date(doc, "delivery_date", "/delivery_date")
    yield from _period(doc.get("invoicing_period"), "/invoicing_period")
    preceding = doc.get("preceding_invoices")
    for i, ref in enumerate(preceding if isinstance(preceding, list) else []):
        if isinstance(ref, Mapping):
            yield from _date(ref, "issue_date", f"/preceding_invoices/{i}/issue_date")
    for role in ("seller", "bill_to", "ship_to"):
        party = doc.get(role)
        address = party.get("address") if isinstance(party, Mapping) else None
        country = address.get("country") if isinstance(address, Mapping) else None
        if isinstance(country, str) and re.fullmatch("[A-Z]{2}", country):
            if country not in known_countries():
                yield f"/{role}/address/country", f"{country!r} is not a known ISO 3166-1 country"
    currency = doc.get("currency")
    if (
        isinstance(currency, str)
        and re.fullmatch("[A-Z]{3}", currency)
        and not is_known_currency(currency)
    ):
        yield "/currency", f"{currency!r} is not a known ISO 4217 currency"
    locale = doc.get("locale")
    if isinstance(locale, str) and not _known_locale(locale):
        yield "/locale", f"{locale!r} is not a locale this service knows (e.g. en-US, de-DE)"
    language = doc.get("language")
    if isinstance(language, str) and not _known_locale(language):
        yield "/language", f"{language!r} is not a language this service knows (e.g. en, de)"

    for key in ("shipping", "amount_paid"):
        yield from _non_negative(doc, key, f"/{key}")
    yield from _rate(doc, "shipping_tax_rate", "/shipping_tax_rate")
    yield from _discount(doc.get("discount"), "/discount")
    seller = doc.get("seller")
    if (
        isinstance(seller, Mapping)
        and isinstance(seller.get("logo"), str)
        and _LOGO_URI.match(seller["logo"])
    ):
        problem = _logo_problem(seller["logo"])
        if problem:
            yield "/seller/logo", problem
    items = doc.get("items")
    if isinstance(items, list):
        yield from _item_problems(items, {} if memo is None else memo)


def _item_problems(items: list[Any], memo: Amounts) -> Iterator[tuple[str, str]]:
    """The meaning of each line item (its pointers are written only for its problems)."""
    default_quantity = _dec(DEFAULT_QUANTITY)
    for i, item in enumerate(items):
        if not isinstance(item, _OBJECT):
            continue
        credit = item.get("credit") is True
        numbers: list[Decimal | None] = []
        for key in ("quantity", "unit_price"):
            problem, value = _checked_amount(item.get(key), memo)
            numbers.append(value)
            if problem:
                yield f"/items/{i}/{key}", problem
                continue
            if value is not None and value < _ZERO and not credit:
                yield (
                    f"/items/{i}/{key}",
                    'must not be negative unless the line is an explicit credit ("credit": true)',
                )
        problem = _rate_problem(item["tax_rate"], memo) if "tax_rate" in item else None
        if problem:
            yield f"/items/{i}/tax_rate", problem
        disc = item.get("discount")
        if disc is not None and isinstance(disc, _OBJECT):
            yield from _discount(disc, f"/items/{i}/discount")
        period = item.get("period")
        if period is not None and isinstance(period, _OBJECT):
            yield from _period(period, f"/items/{i}/period")
        qty = numbers[0] if "quantity" in item else default_quantity
        price = numbers[1]
        if qty is None or price is None:
            continue
        line = qty * price
        if abs(line) >= MAX_AMOUNT:
            yield (
                f"/items/{i}/unit_price",
                f"the line amount {line} is too large (it must be under {MAX_AMOUNT:,})",
            )
        if disc is not None and isinstance(disc, _OBJECT):
            # an amount discount takes the line's sign (totals.line_total): up to the line's
            # size it brings a line, a credit line too, at most to zero
            amount = _dec(disc.get("amount"))
            if amount is not None and amount > abs(line):
                yield (
                    f"/items/{i}/discount/amount",
                    f"the discount {amount} is larger than the line's {line}",
                )


def _blank_required(doc: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """A required text that is only spaces (the number, a party's name, a line's
    description, a preceding invoice's number): refused like an empty one, and so is an
    invoice number with spaces at either end. Every optional text blank is taken as absent
    instead (see :func:`_text`)."""
    blank = "must not be blank (it holds only spaces)"
    fields: list[tuple[Any, str, str]] = [(doc, "number", "/number")]
    fields += [
        (doc.get(role), "name", f"/{role}/name") for role in ("seller", "bill_to", "ship_to")
    ]
    for parent, key, at in fields:
        value = parent.get(key) if isinstance(parent, Mapping) else None
        if _blank(value) and value != "":  # "" is the schema's minLength problem
            yield at, blank
    number = doc.get("number")
    if isinstance(number, str) and not _blank(number) and number != number.strip():
        # " RE-1" prints as RE-1 and is RE-1 to an XML reader (IDs drop their spaces): it
        # would be a second invoice with a number the owner or the series already gave
        yield "/number", "must not begin or end with a space"
    listed = (
        ("/items", doc.get("items"), "description"),
        ("/preceding_invoices", doc.get("preceding_invoices"), "number"),
    )
    for at, entries, key in listed:  # a pointer is written only for a problem
        for i, entry in enumerate(entries if isinstance(entries, list) else []):
            value = entry.get(key) if isinstance(entry, _OBJECT) else None
            if isinstance(value, str) and value and not value.strip():
                yield f"{at}/{i}/{key}", blank


def _date(doc: Mapping[str, Any], key: str, at: str) -> Iterator[tuple[str, str]]:
    value = doc.get(key)
    if value is not None and _real_date(value) is None:
        yield at, f"{_shown(value)} is not a real calendar date in the form YYYY-MM-DD"


def _period(period: Any, at: str) -> Iterator[tuple[str, str]]:
    """A period's dates are real and its start is not after its end."""
    if not isinstance(period, Mapping):
        return
    yield from _date(period, "start", f"{at}/start")
    yield from _date(period, "end", f"{at}/end")
    start, end = _real_date(period.get("start")), _real_date(period.get("end"))
    if start and end and start > end:
        yield f"{at}/end", f"the period ends ({end}) before it starts ({start})"


_ZERO, _HUNDRED = Decimal(0), Decimal(100)
#: the VAT category codes, for messages
_CATEGORIES = ", ".join(VAT_CATEGORIES)
#: codes in Babel's territory list that are not countries (groupings, pseudo-locales) or are
#: only "exceptionally reserved" in ISO 3166-1, so no e-invoice code list accepts them
_NOT_COUNTRIES = frozenset(
    {"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ", "AC", "CP", "CQ", "DG", "EA", "IC", "TA"}
)


#: the codes :func:`known_countries` reads, one a line (``#`` starts a comment): generated
#: from Babel by ``scripts/locale_data.py``, checked against it by the tests
COUNTRIES_FILE = "locale/countries.txt"


@lru_cache(maxsize=1)
def known_countries() -> frozenset[str]:
    """The ISO 3166-1 alpha-2 codes a structured address may name (:func:`cldr_countries`),
    read from ``locale/countries.txt``: loading Babel's English locale data for its territory
    names costs ~40 ms of CPU (the data and ``babel.dates``, which unpickling it imports), a
    fifth of upload's and intake's first request."""
    text = resources.files("invoiceflow").joinpath(COUNTRIES_FILE).read_text(encoding="ascii")
    lines = (line.split("#", 1)[0].strip() for line in text.splitlines())
    return frozenset(line for line in lines if line)


def cldr_countries() -> frozenset[str]:
    """Babel's (CLDR's) territory list without groupings and reserved codes, plus XI
    (Northern Ireland, which the EN 16931 country code list adds for VAT): what
    ``locale/countries.txt`` holds (``scripts/locale_data.py`` writes it)."""
    from babel import Locale

    names = Locale("en").territories
    codes = {
        c
        for c in names
        if isinstance(c, str) and len(c) == 2 and c.isalpha() and c not in _NOT_COUNTRIES
    }
    return frozenset(codes | {"XI"})


def _non_negative(doc: Mapping[str, Any], key: str, at: str) -> Iterator[tuple[str, str]]:
    if key not in doc:
        return
    problem, value = _checked_amount(doc[key])
    if problem:
        yield at, problem
        return
    if value is not None and value < 0:
        yield at, "must not be negative"


def _rate(doc: Mapping[str, Any], key: str, at: str) -> Iterator[tuple[str, str]]:
    problem = _rate_problem(doc[key]) if key in doc else None
    if problem:
        yield at, problem


def _rate_problem(value: Any, memo: Amounts | None = None) -> str | None:
    problem, number = _checked_amount(value, memo)
    if problem:
        return problem
    if number is not None and not _ZERO <= number <= _HUNDRED:
        return f"must be a percentage from 0 to 100 (got {number})"
    return None


def _discount(disc: Any, at: str) -> Iterator[tuple[str, str]]:
    if not isinstance(disc, Mapping):
        return
    if "percent" in disc:
        yield from _rate(disc, "percent", f"{at}/percent")
    if "amount" in disc:
        yield from _non_negative(disc, "amount", f"{at}/amount")


@lru_cache(maxsize=256)
def _known_locale(tag: str) -> bool:
    from babel import Locale, UnknownLocaleError

    try:
        Locale.parse(tag.replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return False
    return True


def _decode_logo(uri: str) -> tuple[str, bytes] | str:
    head, _, payload = uri.partition(",")
    media_type = head[len("data:") :].split(";")[0]
    if media_type not in _MAGIC or not head.endswith(";base64"):
        return "the logo must be a base64 data: URI of a PNG or JPEG image"
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return "the logo is not valid base64"
    if len(data) > MAX_LOGO_BYTES:
        return f"the logo is {len(data):,} bytes; at most {MAX_LOGO_BYTES:,} are allowed"
    if not data.startswith(_MAGIC[media_type]):
        return f"the logo's bytes are not a {media_type.split('/')[1].upper()} image"
    return media_type, data


def _logo_problem(uri: str) -> str | None:
    decoded = _decode_logo(uri)
    return decoded if isinstance(decoded, str) else _image_problem(*decoded)


def _image_problem(media_type: str, data: bytes) -> str | None:
    """What keeps the renderer from drawing a logo whose first bytes are right: a header that
    does not parse, too many pixels (a few bytes of PNG can claim billions), or damaged data
    (a PNG's chunks are checked, a JPEG decoded at an eighth of its size). Cheap: no full
    decode. Pillow's messages stay out of the answer."""
    from PIL import Image

    kind = media_type.split("/")[1].upper()
    try:
        with Image.open(io.BytesIO(data), formats=(kind,)) as im:
            w, h = im.size
            if w < 1 or h < 1 or w * h > MAX_LOGO_PIXELS:
                return f"the logo is {w}x{h} pixels; at most {MAX_LOGO_PIXELS:,} are allowed"
            if kind == "JPEG":
                im.draft(im.mode, (1, 1))
                im.load()
            else:
                im.verify()
    except Image.DecompressionBombError:
        return f"the logo has too many pixels; at most {MAX_LOGO_PIXELS:,} are allowed"
    except Exception:  # noqa: BLE001  # Pillow raises many unrelated types for damaged data
        return f"the logo is not a readable {kind} image (damaged or incomplete)"
    return None


# --------------------------------------------------------------------------- build


def _blank(value: Any) -> bool:
    """A string that is empty after stripping (``""``, ``"  "``): the same as absent."""
    return isinstance(value, str) and not value.strip()


def _text(value: Any) -> str | None:
    """An optional text field: None when absent or blank, so the model never holds blank
    text (a writer would write an empty element, which the e-invoice rules refuse)."""
    return value if isinstance(value, str) and not _blank(value) else None


def _party(d: Mapping[str, Any] | None) -> Party | None:
    if not d:
        return None
    address = d.get("address", ())
    structured = isinstance(address, _OBJECT)
    return Party(
        name=d["name"],
        company=_text(d.get("company")),
        address=() if structured else tuple(x for x in address if not _blank(x)),
        email=_text(d.get("email")),
        phone=_text(d.get("phone")),
        tax_id=_text(d.get("tax_id")),
        postal=_postal(address) if structured else None,
        vat_id=_text(d.get("vat_id")),
        legal_id=_identifier(d.get("legal_id")),
        electronic_address=_identifier(d.get("electronic_address")),
        contact=_contact(d.get("contact")),
    )


def _postal(d: Mapping[str, Any]) -> PostalAddress:
    return PostalAddress(
        country=d["country"],
        lines=tuple(x for x in d.get("lines", ()) if not _blank(x)),
        city=_text(d.get("city")),
        postal_code=_text(d.get("postal_code")),
        subdivision=_text(d.get("subdivision")),
    )


def _identifier(d: Mapping[str, Any] | None) -> Identifier | None:
    """An identifier, None when absent or when its id is blank (its scheme alone says
    nothing)."""
    if d is None or _blank(d["id"]):
        return None
    return Identifier(d["id"], _text(d.get("scheme")))


def _contact(d: Mapping[str, Any] | None) -> Contact | None:
    """A contact, None when it names nothing (so an empty one does not survive a round
    trip through :func:`~invoiceflow.domain.model.to_json` as something else)."""
    if d is None:
        return None
    contact = Contact(_text(d.get("name")), _text(d.get("phone")), _text(d.get("email")))
    return None if contact == Contact() else contact


def _period_value(d: Mapping[str, Any] | None) -> Period | None:
    if d is None:
        return None
    period = Period(_real_date(d.get("start")), _real_date(d.get("end")))
    return None if period == Period() else period


def _exemptions(d: Mapping[str, Any] | None) -> tuple[TaxExemption, ...]:
    """The exemptions in the order of :data:`VAT_CATEGORIES` (a canonical order)."""
    d = d or {}
    given = (
        TaxExemption(cat, _text(d[cat].get("reason")), _text(d[cat].get("code")))
        for cat in VAT_CATEGORIES
        if cat in d
    )
    return tuple(ex for ex in given if ex.reason is not None or ex.code is not None)


def _disc(d: Mapping[str, Any] | None, memo: Amounts | None = None) -> Discount | None:
    if not d:
        return None
    kind = "percent" if "percent" in d else "amount"
    value = _dec(d[kind], memo)
    assert value is not None
    return Discount(kind, value)  # type: ignore[arg-type]


def _payment(d: Mapping[str, Any] | None) -> PaymentDetails | None:
    """Payment details, None when they give nothing (every field absent or blank)."""
    payment = PaymentDetails(**{k: _text(v) for k, v in (d or {}).items()})
    return None if payment == PaymentDetails() else payment


def _opt_dec(value: Any, memo: Amounts | None = None) -> Decimal | None:
    return None if value is None else _dec(value, memo)


def _amount_or_zero(value: Any, memo: Amounts) -> Decimal:
    return _dec(value, memo) or Decimal(0)


#: how each optional field of a line item becomes the LineItem's (a field the item leaves
#: out keeps the LineItem's default, which is what these give for an absent value too)
_OPTIONAL_ITEM_FIELDS: dict[str, Callable[[Any, Amounts], Any]] = {
    "unit": lambda value, memo: _text(value),
    "sku": lambda value, memo: _text(value),
    "tax_rate": _opt_dec,
    "discount": _disc,
    "credit": lambda value, memo: bool(value),
    "unit_code": lambda value, memo: _text(value),
    "buyer_item_id": lambda value, memo: _text(value),
    "standard_id": lambda value, memo: _identifier(value),
    "period": lambda value, memo: _period_value(value),
    "note": lambda value, memo: _text(value),
    "tax_category": lambda value, memo: value,
}


def _line_item(it: Mapping[str, Any], memo: Amounts) -> LineItem:
    """A line item from the fields it has (most items have a few of the fourteen)."""
    fields = {
        "description": it["description"],
        "quantity": _amount_or_zero(it.get("quantity", DEFAULT_QUANTITY), memo),
        "unit_price": _amount_or_zero(it["unit_price"], memo),
    }
    fields.update(
        (key, _OPTIONAL_ITEM_FIELDS[key](value, memo))
        for key, value in it.items()
        if key in _OPTIONAL_ITEM_FIELDS
    )
    return assemble(LineItem, fields)  # every required field, only fields


def _build(d: Mapping[str, Any], memo: Amounts | None = None) -> Invoice:
    """The Invoice of a checked canonical document; ``memo``: the amount texts the checks
    decoded (:func:`parse_invoice`), else they are decoded here."""
    memo = {} if memo is None else memo
    seller = d["seller"]
    logo = None
    if seller.get("logo"):
        decoded = _decode_logo(seller["logo"])
        assert not isinstance(decoded, str)
        logo = Logo(decoded[0], decoded[1])  # type: ignore[arg-type]
    items = tuple(_line_item(it, memo) for it in d["items"])
    payment = d.get("payment")
    issue = _real_date(d["issue_date"])
    assert issue is not None
    seller_party = _party(seller)
    bill_to = _party(d["bill_to"])
    assert seller_party is not None and bill_to is not None
    return Invoice(
        number=d.get("number", ""),  # absent: assigned when the invoice is accepted
        issue_date=issue,
        currency=d["currency"],
        seller=seller_party,
        bill_to=bill_to,
        items=items,
        locale=d.get("locale", DEFAULT_LOCALE),
        due_date=_real_date(d.get("due_date")),
        payment_terms=_text(d.get("payment_terms")),
        logo=logo,
        ship_to=_party(d.get("ship_to")),
        discount=_disc(d.get("discount")),
        shipping=_dec(d.get("shipping", "0")) or Decimal(0),
        shipping_tax_rate=_opt_dec(d.get("shipping_tax_rate")),
        amount_paid=_dec(d.get("amount_paid", "0")) or Decimal(0),
        notes=_text(d.get("notes")),
        terms=_text(d.get("terms")),
        payment=_payment(payment),
        document_type=d.get("document_type", "invoice"),
        preceding_invoices=tuple(
            DocumentReference(ref["number"], _real_date(ref.get("issue_date")))
            for ref in d.get("preceding_invoices", ())
        ),
        buyer_reference=_text(d.get("buyer_reference")),
        purchase_order=_text(d.get("purchase_order")),
        contract=_text(d.get("contract")),
        delivery_date=_real_date(d.get("delivery_date")),
        invoicing_period=_period_value(d.get("invoicing_period")),
        shipping_tax_category=d.get("shipping_tax_category"),
        tax_exemptions=_exemptions(d.get("tax_exemptions")),
        language=d.get("language"),
        branding=_branding(d.get("branding")),
    )


def _branding(b: dict[str, Any] | None) -> Branding | None:
    if not b:
        return None
    return Branding(
        layout=b.get("layout"),
        accent_color=b["accent_color"].upper() if b.get("accent_color") else None,
        font=b.get("font"),
        footer=_text(b.get("footer")),
    )


def _check_totals(invoice: Invoice) -> Iterator[tuple[str, str]]:
    """What only the computed totals can tell."""
    totals = compute_totals(invoice)
    d = invoice.discount
    if d is not None and d.kind == "amount" and d.value > max(totals.subtotal, Decimal(0)):
        yield (
            "/discount/amount",
            f"the discount {d.value} is larger than the subtotal {totals.subtotal}",
        )
    if max(abs(totals.subtotal), abs(totals.total)) >= MAX_AMOUNT:
        yield "/items", f"the invoice total is too large (it must be under {MAX_AMOUNT:,})"


# ---------------------------------------------------------------- client-sent totals


def _check_sent_totals(invoice: Invoice, sent: Mapping[str, Any]) -> None:
    totals = compute_totals(invoice)
    tolerance = minor_unit(invoice.currency)
    computed: list[tuple[str, Decimal]] = [
        (f"/items/{i}/total", lt.amount) for i, lt in enumerate(totals.lines)
    ]
    computed += [
        ("/subtotal", totals.subtotal),
        ("/tax_amount", totals.tax),
        ("/total_amount", totals.total),
    ]
    values = {f"/items/{i}/total": v for i, v in enumerate(sent.get("items", []))}
    values.update({f"/{k}": v for k, v in sent.items() if k != "items"})
    problems = []
    for pointer, expected in computed:
        raw = values.get(pointer)
        if raw is None:
            continue
        got = _dec(raw)
        if got is None:
            problems.append(Problem(pointer, f"must be a decimal number (got {_shown(raw)})"))
        elif abs(got - expected) > tolerance:
            problems.append(
                Problem(
                    pointer,
                    f"the value sent, {got}, differs from the value "
                    f"computed, {expected}, by more than {tolerance}",
                )
            )
    if problems:
        raise TotalsMismatch(problems, "the totals sent do not match the totals computed")


# ---------------------------------------------------------- the owner's defaults


#: a document without a currency whose owner's branding settings have none
MISSING_CURRENCY = (
    "is required (an ISO 4217 code such as EUR), unless your branding settings have a "
    "default currency (PUT /settings/branding)"
)
#: the document's top-level fields that the owner's branding settings fill in when absent
DEFAULT_FIELDS = ("notes", "terms", "payment", "locale", "currency", "language")
#: the fields of the document's ``branding`` object, each filled in on its own
BRANDING_FIELDS = ("layout", "accent_color", "font", "footer")


def apply_defaults(doc: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The canonical document with the fields it leaves out taken from ``defaults`` (the
    owner's branding settings): the top-level :data:`DEFAULT_FIELDS`, each field of
    ``branding`` (:data:`BRANDING_FIELDS`) and the seller's ``logo``. A field the document
    has, even blank, is its own. The default ``language`` goes with the default ``locale``:
    a document that names its own locale is labelled in that locale's language unless it
    names a language too (a French customer's invoice reads French)."""
    out = dict(doc)
    for key in DEFAULT_FIELDS:
        if key == "language" and "locale" in doc:
            continue
        if key not in out and key in defaults:
            out[key] = defaults[key]
    look = {key: defaults[key] for key in BRANDING_FIELDS if key in defaults}
    own = out.get("branding")
    if look and ("branding" not in out or isinstance(own, Mapping)):
        out["branding"] = {**look, **(own or {})}
    seller = out.get("seller")
    if "logo" in defaults and isinstance(seller, Mapping) and "logo" not in seller:
        out["seller"] = {**seller, "logo": defaults["logo"]}
    return out


@lru_cache(maxsize=1)
def settings_schema() -> dict[str, Any]:
    """branding.v1.schema.json: the owner's branding settings (its fields refer to the
    invoice schema's, so each rule is stated once)."""
    text = resources.files("invoiceflow.domain").joinpath("branding.v1.schema.json").read_text()
    return dict(json.loads(text))


@lru_cache(maxsize=1)
def _settings_validator() -> Any:
    import jsonschema
    from referencing import Registry, Resource

    invoice = schema()
    registry = Registry().with_resource(invoice["$id"], Resource.from_contents(invoice))
    return jsonschema.Draft202012Validator(settings_schema(), registry=registry)


def check_settings(settings: Any) -> list[Problem]:
    """Every problem of a branding settings document (empty: it may be stored), each with a
    JSON pointer: its structure (branding.v1.schema.json) and meaning (known currency,
    locale and language, the logo's bytes, no control characters)."""
    if not isinstance(settings, Mapping):
        return [Problem("", "the branding settings must be a JSON object")]
    found: list[tuple[str, str]] = []
    errors = sorted(
        _settings_validator().iter_errors(settings), key=lambda e: list(map(str, e.path))
    )
    for err in errors:
        found.extend(_humanise(err))
    found.extend(_check_strings(settings, ""))
    currency = settings.get("currency")
    if isinstance(currency, str) and re.fullmatch("[A-Z]{3}", currency):
        if not is_known_currency(currency):
            found.append(("/currency", f"{currency!r} is not a known ISO 4217 currency"))
    for key, what in (("locale", "locale"), ("language", "language")):
        tag = settings.get(key)
        if isinstance(tag, str) and not _known_locale(tag):
            found.append((f"/{key}", f"{tag!r} is not a {what} this service knows (e.g. de-DE)"))
    logo = settings.get("logo")
    if isinstance(logo, str) and _LOGO_URI.match(logo):
        problem = _logo_problem(logo)
        if problem:
            found.append(("/logo", problem))
    return _dedupe([Problem(p, m) for p, m in found])
