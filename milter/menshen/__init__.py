"""menshen (门神): a content-security milter for Postfix.

The package imports nothing heavy at import time; see DESIGN in docs/ for the flow.
"""

__version__ = "0.1.0"
