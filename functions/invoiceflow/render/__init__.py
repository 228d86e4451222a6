"""Renderers: the invoice as PDF (:mod:`.pdf`) and as an Excel workbook (:mod:`.xlsx`).

:mod:`.fmt` holds the locale formatting both share. This package imports nothing heavy:
ReportLab is imported only inside :mod:`.pdf`, openpyxl only inside :mod:`.xlsx`.
"""
