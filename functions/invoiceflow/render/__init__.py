"""Renderers: the invoice as PDF (:mod:`.pdf`) and as an Excel workbook (:mod:`.xlsx`).

:mod:`.localize` holds the locale formatting both share, :mod:`.content` what both print
about the parties and the payment. This package imports nothing heavy:
ReportLab is imported only inside :mod:`.pdf`, openpyxl only inside :mod:`.xlsx`.
"""
