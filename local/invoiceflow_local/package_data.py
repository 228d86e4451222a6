"""Where the local runtime's package data is: ``bundled/`` holds the Knative manifests, the
function entry files and the demo invoice (in a checkout, links to the repository's one copy of
each; in the wheel, the files themselves)."""

from pathlib import Path

BUNDLED_DIR = Path(__file__).parent / "bundled"
#: ``knative/``: the Trigger and ingress manifests (``KNATIVE_DIR`` overrides it)
KNATIVE_DIR = BUNDLED_DIR / "knative"
#: ``functions/``: the entry files ``<step>.py`` of the functions
FUNCTIONS_DIR = BUNDLED_DIR / "functions"
#: ``events/examples/invoices/eur-two-rates.json``, the invoice ``invoiceflow demo`` sends
DEMO_INVOICE = BUNDLED_DIR / "demo-invoice.json"
