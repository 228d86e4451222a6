"""Invoice number series: the pattern an owner's server-assigned numbers follow, and the
JSON Schema of the numbering settings (``GET|PUT /settings/numbering``, ``invoiceflow numbering``).

A pattern is literal text with placeholders:

* ``{seq}`` the sequence number (required, exactly once); ``{seq:05}`` zero-pads it to 5 digits
* ``{yyyy}``, ``{yy}``, ``{mm}``: the year, two-digit year and month of the invoice's issue date

``yearly_reset``: the sequence restarts at 1 for each year of the issue date (one series per
year, as German and French accountants keep them: ``RE-2026-00001`` ... then ``RE-2027-00001``);
such a pattern must show the year, or two years' numbers would be the same. Without it the
sequence runs on across years. The counters live in the database
(:meth:`invoiceflow.stores.protocols.Repository.accept_invoice` takes the next one inside the
transaction that records the invoice, so a number is never skipped nor given twice).

Imports :mod:`invoiceflow.errors` (and the repository's type; the PDF's character check
when a pattern is checked).
"""

from __future__ import annotations

import re
from datetime import date
from functools import partial
from typing import TYPE_CHECKING, Any

from invoiceflow.errors import Problem, ValidationError
from invoiceflow.records import record

if TYPE_CHECKING:
    from invoiceflow.stores.protocols import NumberAssignment, Repository

#: the series of an owner who configured none: one series per issue year, 2026-00001...
DEFAULT_PATTERN = "{yyyy}-{seq:05}"
DEFAULT_YEARLY_RESET = True
#: longest pattern, and longest number it may make (invoice.v1.schema.json: number maxLength)
MAX_PATTERN_CHARS = 60
MAX_NUMBER_CHARS = 100
#: widest zero padding of ``{seq:NN}``
MAX_PADDING = 12

_TOKEN = re.compile(r"\{(?P<name>seq|yyyy|yy|mm)(?::(?P<pad>0\d{1,2}))?\}")
#: the punctuation literal text may hold besides letters and digits (of any script): nothing
#: a file name, a URL or an email header breaks on, no line or paragraph separators
_PUNCTUATION = frozenset("-_.#:+() ")


def _literal_ok(text: str) -> bool:
    """Letters, digits and :data:`_PUNCTUATION` only, no space at either end."""
    return text == text.strip() and all(c.isalnum() or c in _PUNCTUATION for c in text)


@record
class NumberSeries:
    """An owner's numbering settings."""

    pattern: str = DEFAULT_PATTERN
    yearly_reset: bool = DEFAULT_YEARLY_RESET

    def to_dict(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "yearly_reset": self.yearly_reset}


DEFAULT_SERIES = NumberSeries()

#: the JSON Schema of a numbering settings body (PUT /settings/numbering; openapi.yaml the same)
SETTINGS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["pattern"],
    "additionalProperties": False,
    "properties": {
        "pattern": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_PATTERN_CHARS,
            "description": "Literal text with {seq} or {seq:05} (once), {yyyy}, {yy}, {mm}.",
        },
        "yearly_reset": {
            "type": "boolean",
            "default": DEFAULT_YEARLY_RESET,
            "description": "Restart at 1 each year of the issue date (the pattern shows the year).",
        },
    },
}


def pattern_problems(pattern: str, yearly_reset: bool, at: str = "") -> list[Problem]:
    """Everything wrong with a pattern (empty: it is usable), each pointing at ``at/pattern``."""
    where = f"{at}/pattern"
    problems: list[Problem] = []
    if len(pattern) > MAX_PATTERN_CHARS:
        problems.append(Problem(where, f"is longer than {MAX_PATTERN_CHARS} characters"))
    tokens = list(_TOKEN.finditer(pattern))
    if not _literal_ok(_TOKEN.sub("", pattern)) or pattern != pattern.strip():
        problems.append(
            Problem(
                where,
                "holds an unknown placeholder or a character a number may not hold (only "
                "letters, digits, the placeholders {seq}, {seq:05}, {yyyy}, {yy}, {mm} and "
                "- _ . # : + ( ) and inner spaces)",
            )
        )
    seqs = [t for t in tokens if t["name"] == "seq"]
    if len(seqs) != 1:
        problems.append(Problem(where, "must hold the sequence placeholder {seq} exactly once"))
    elif seqs[0]["pad"] is not None and int(seqs[0]["pad"]) > MAX_PADDING:
        problems.append(Problem(where, f"pads {{seq}} to at most {MAX_PADDING} digits"))
    if any(t["pad"] is not None and t["name"] != "seq" for t in tokens):
        problems.append(Problem(where, "only {seq} takes a padding ({seq:05})"))
    if yearly_reset and not any(t["name"] in ("yyyy", "yy") for t in tokens):
        problems.append(
            Problem(
                where,
                "must show the year ({yyyy} or {yy}) when the sequence restarts every year, "
                "or two years' invoices would get the same numbers",
            )
        )
    return problems


def check_series(body: Any) -> NumberSeries:
    """The settings of a request body, held to :data:`SETTINGS_SCHEMA` and then to the
    pattern's rules; a 422 listing every problem with its JSON pointer."""
    import jsonschema

    problems: list[Problem] = []
    for err in jsonschema.Draft202012Validator(SETTINGS_SCHEMA).iter_errors(body):
        at = "".join(f"/{part}" for part in err.absolute_path)
        if err.validator == "additionalProperties" and isinstance(body, dict):
            known = SETTINGS_SCHEMA["properties"]
            problems += [
                Problem(f"/{k}", "is not a numbering setting") for k in body if k not in known
            ]
        elif err.validator == "required":
            problems.append(Problem(f"{at}/pattern", "is required, e.g. RE-{yyyy}-{seq:05}"))
        else:
            problems.append(Problem(at, err.message))
    reset = DEFAULT_YEARLY_RESET
    if not problems:
        reset = body.get("yearly_reset", DEFAULT_YEARLY_RESET)
        problems = pattern_problems(body["pattern"], reset)
        from invoiceflow.render.scripts import unprintable

        missing = unprintable(body["pattern"])
        if missing:  # its numbers would be refused in every PDF
            codes = ", ".join(f"U+{ord(c):04X}" for c in missing)
            problems.append(Problem("/pattern", f"{codes} cannot be printed in the PDF"))
    if problems:
        raise ValidationError(problems, "invalid numbering settings")
    return NumberSeries(body["pattern"], reset)


def series_of(repo: Repository, owner_id: str) -> NumberSeries:
    """The owner's series: their settings, else :data:`DEFAULT_SERIES`."""
    stored = repo.get_number_series(owner_id)
    return NumberSeries(*stored) if stored else DEFAULT_SERIES


def settings_view(repo: Repository, owner_id: str) -> dict[str, Any]:
    """What ``GET /settings/numbering`` and ``invoiceflow numbering show`` answer: the series,
    whether the owner configured it (else the default), and the last sequence number given
    in each period (``""``: the one series without a yearly reset)."""
    return {
        **series_of(repo, owner_id).to_dict(),
        "configured": repo.get_number_series(owner_id) is not None,
        "last_numbers": {c.period: c.last_seq for c in repo.number_counters(owner_id)},
    }


def period(series: NumberSeries, issue_date: date) -> str:
    """The key of the counter a number comes from: the issue year with a yearly reset, else
    the one series of the owner (``""``)."""
    return f"{issue_date.year:04d}" if series.yearly_reset else ""


def assignment(series: NumberSeries, issue_date: date) -> NumberAssignment:
    """How the repository numbers a document of ``issue_date`` in ``series``."""
    from invoiceflow.stores.protocols import NumberAssignment

    pattern = series.pattern
    seq = next(t for t in _TOKEN.finditer(pattern) if t["name"] == "seq")
    head = _fill_dates(pattern[: seq.start()], issue_date)
    tail = _fill_dates(pattern[seq.end() :], issue_date)
    return NumberAssignment(
        period=period(series, issue_date),
        format=partial(format_number, pattern, issue_date),
        prefix=head,
        seq_of=partial(_sequence_of, head, tail, int(seq["pad"] or 0)),
    )


def _fill_dates(text: str, issue_date: date) -> str:
    """``text`` with its date placeholders filled in for ``issue_date``."""
    return _TOKEN.sub(lambda m: _date_part(m["name"], issue_date) or m[0], text)


def _date_part(name: str, issue_date: date) -> str | None:
    if name == "yyyy":
        return f"{issue_date.year:04d}"
    if name == "yy":
        return f"{issue_date.year % 100:02d}"
    if name == "mm":
        return f"{issue_date.month:02d}"
    return None


def _sequence_of(head: str, tail: str, pad: int, number: str) -> int | None:
    """The sequence number that ``number`` is in a series whose numbers on one date are
    ``head``, the sequence number zero-padded to ``pad`` digits, then ``tail``
    (``RE-2026-00007`` -> 7 for ``RE-{yyyy}-{seq:05}`` in 2026), else None: a number the
    series would never write (another year, another padding, other text). Called for each of
    an owner's numbers with the series' prefix, so the pattern is worked out once, before."""
    if len(number) <= len(head) + len(tail) or not number.startswith(head):
        return None
    digits = number[len(head) : len(number) - len(tail)]
    if not (number.endswith(tail) and digits.isascii() and digits.isdigit()):
        return None
    seq = int(digits)
    return seq if str(seq).zfill(pad) == digits else None


def format_number(pattern: str, issue_date: date, seq: int) -> str:
    """The number ``seq`` of the series on ``issue_date``: ``RE-{yyyy}-{seq:05}`` with 7 on
    2026-03-01 is ``RE-2026-00007``."""

    def fill(match: re.Match[str]) -> str:
        if match["name"] == "seq":
            return str(seq).zfill(int(match["pad"]) if match["pad"] else 0)
        return _date_part(match["name"], issue_date) or ""

    number = _TOKEN.sub(fill, pattern)
    if len(number) > MAX_NUMBER_CHARS:
        raise ValidationError(
            [Problem("/number", f"the series' next number {number[:40]}... is too long")],
            "the invoice number series is exhausted",
        )
    return number
