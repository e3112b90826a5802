"""The report's HTML pieces that every section uses."""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence
from html import escape


def table(
    head: Sequence[str], rows: Iterable[Sequence[str | None]], numeric: set[int]
) -> str:
    """An HTML table; cells already escaped. A row starting with None opens a group."""
    out = ["<table><tr>", *(f"<th>{h}</th>" for h in head), "</tr>"]
    for row in rows:
        group = row[0] is None
        cells = row[1:] if group else row
        out.append('<tr class="group">' if group else "<tr>")
        for i, cell in enumerate(cells):
            out.append(f'<td class="num">{cell}</td>' if i in numeric else
                       f"<td>{cell}</td>")  # fmt: skip
        out.append("</tr>")
    out.append("</table>")
    return "".join(out)


def empty(text: str) -> str:
    return f'<p class="empty">{escape(text)}</p>'
