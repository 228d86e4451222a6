"""The text colour that reads on a fill, white or ink, by WCAG 2 contrast: one rule for the
PDF's accent bars and the workbook's header rows, so both pick the same for a branding's
accent colour (a light accent gets ink, a dark one white)."""

from __future__ import annotations

#: the documents' text colour (the PDF's ``INK``), as RRGGBB
INK_RGB = "1E2329"


def rgb_of(hex_rgb: str) -> tuple[float, float, float]:
    """``"1E2329"`` (or ``"#1E2329"``) as sRGB components from 0 to 1."""
    digits = hex_rgb.lstrip("#")
    return (
        int(digits[0:2], 16) / 255,
        int(digits[2:4], 16) / 255,
        int(digits[4:6], 16) / 255,
    )


def luminance(red: float, green: float, blue: float) -> float:
    """The relative luminance of an sRGB colour (WCAG 2), 0 (black) to 1 (white)."""

    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else float(((c + 0.055) / 1.055) ** 2.4)

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def white_reads_better(red: float, green: float, blue: float) -> bool:
    """Whether white text contrasts at least as much as ink on this fill (WCAG 2 ratio)."""
    fill = luminance(red, green, blue) + 0.05
    return 1.05 / fill >= fill / (luminance(*rgb_of(INK_RGB)) + 0.05)
