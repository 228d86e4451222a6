"""The domain's size limits: constants only, so that the settings can name their defaults
without importing the parser."""

#: the largest document accepted by default, in bytes (``MAX_DOCUMENT_BYTES``)
DEFAULT_MAX_BYTES = 2 * 1024 * 1024

#: the most pixels a logo may have (width x height): a few bytes of PNG can claim billions,
#: which no renderer should decode (checked when the logo is accepted, and again when drawn)
MAX_LOGO_PIXELS = 25_000_000
