"""EN 16931 electronic invoices: the CII (:mod:`.cii`) and UBL (:mod:`.ubl`) writers. Each
writer checks the document against the business rules (:mod:`invoiceflow.domain.en16931`)
before writing, so no XML that breaks a rule the document can break leaves the package."""
