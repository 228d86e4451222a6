"""The domain's size limits: constants only, so that the settings can name their defaults
without importing the parser."""

#: the largest document accepted by default, in bytes (``MAX_DOCUMENT_BYTES``)
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
