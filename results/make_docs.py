"""Regenerate the tables of docs/nonlinear_advantage.md and docs/compression.md from the stored result sets here.

    python results/make_docs.py            # rewrite the marked tables
    python results/make_docs.py --check    # exit 1 and name the tables that differ (nothing written)

Each table sits between ``<!-- table:NAME -->`` and ``<!-- end -->``; ``nonlin_explorer.findings`` computes it
(95% Student-t intervals over seeds). tests/test_findings.py fails when a table differs from its stored set.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOCS = (HERE.parent / "docs" / "nonlinear_advantage.md", HERE.parent / "docs" / "compression.md")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when a table differs")
    args = parser.parse_args(argv)
    from nonlin_explorer.findings import doc_tables, render_tables, update_doc

    tables = render_tables(HERE)
    status = 0
    for doc in DOCS:
        if args.check:
            current = doc_tables(doc.read_text())
            stale = sorted(name for name, body in current.items() if tables.get(name) != body)
            if stale:
                print(f"{doc}: tables differ from the stored sets: {', '.join(stale)}")
                status = 1
        else:
            changed = update_doc(doc, tables)
            print(f"{doc}: {len(changed)} table(s) rewritten" + (f" ({', '.join(changed)})" if changed else ""))
    return status


if __name__ == "__main__":
    raise SystemExit(main())
