"""Renderers: the invoice as PDF (:mod:`.pdf`) and as an Excel workbook (:mod:`.xlsx`).

:mod:`.localize` holds the locale formatting both share, :mod:`.content` what both print
about the parties and the payment, :mod:`.scripts` which font, bidi and shaping set each
script (also intake's check of printable text). This package imports nothing heavy:
ReportLab is imported only inside :mod:`.pdf` (and lazily in :mod:`.scripts`), openpyxl only
inside :mod:`.xlsx`.
"""
