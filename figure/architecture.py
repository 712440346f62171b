"""Runs in: offline.

Draws figure/architecture.svg (the README's architecture diagram). Run:

    python figure/architecture.py

Plain SVG written by hand, so the figure can be regenerated anywhere without
any drawing tool installed.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

W, H = 900, 470
TRUSTED, SPOKE, STORE, USER = "#dbeafe", "#fde68a", "#e5e7eb", "#dcfce7"


def box(x, y, w, h, fill, title, lines=(), dashed=False):
    dash = ' stroke-dasharray="6 4"' if dashed else ""
    out = [f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="8" fill="{fill}" stroke="#111827"{dash}/>',
           f'<text x="{x + w / 2}" y="{y + 20}" text-anchor="middle" font-weight="bold">{escape(title)}</text>']
    for i, line in enumerate(lines):
        out.append(f'<text x="{x + 10}" y="{y + 42 + 17 * i}" font-size="12">{escape(line)}</text>')
    return out


def arrow(x1, y1, x2, y2, label="", both=False):
    start = ' marker-start="url(#a)"' if both else ""
    out = [f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#111827" marker-end="url(#a)"{start}/>']
    if label:
        out.append(f'<text x="{(x1 + x2) / 2 + 4}" y="{(y1 + y2) / 2 - 4}" font-size="11" '
                   f'fill="#374151">{escape(label)}</text>')
    return out


def main() -> None:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" '
             'font-size="13">',
             '<defs><marker id="a" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto-start-reverse">'
             '<path d="M0,0 L10,4 L0,8 z" fill="#111827"/></marker></defs>',
             f'<rect width="{W}" height="{H}" fill="white"/>']
    parts += box(20, 30, 130, 60, USER, "User", ["terminal, consent"])
    parts += box(220, 20, 330, 190, TRUSTED, "Hub (trusted)", [
        "planner LLM call (holds the API key)", "permission store  data/perm.json",
        "brokers: LLM, memory, HTTP egress, apps", "egress: app's own eTLD+1 only",
        "audit log (JSONL)", "knows a sender by its socket"])
    parts += box(640, 20, 230, 70, STORE, "Redis", ["memory, one namespace per app"])
    parts += box(640, 120, 230, 70, STORE, "Network", ["reached only through the hub"])
    parts += box(220, 250, 330, 60, TRUSTED, "Zygote (clean env, no secrets)",
                 ["imports libraries once, forks spokes"])
    parts += box(40, 360, 250, 95, SPOKE, "Spoke: app A", [
        "own LLM context and memory", "mount view, rlimits, nobody uid,", "Landlock, seccomp"], dashed=True)
    parts += box(320, 360, 250, 95, SPOKE, "Spoke: app B", [
        "own LLM context and memory", "no sockets, no exec, no fork", "no access to data/ secrets"], dashed=True)
    parts += box(600, 360, 270, 95, SPOKE, "Routing spoke (no app)", [
        "multi-app plans", "calls apps only through the hub"], dashed=True)
    parts += arrow(150, 60, 220, 60, "query", both=True)
    parts += arrow(550, 55, 640, 55, "", both=True)
    parts += arrow(550, 155, 640, 155, "", both=True)
    parts += arrow(385, 210, 385, 250, "spawn")
    parts += arrow(300, 310, 165, 360, "fork")
    parts += arrow(420, 310, 445, 360, "fork")
    parts += arrow(500, 310, 735, 360, "fork")
    for x in (165, 445, 735):
        parts.append(f'<path d="M{x + 20},360 C{x + 20},300 560,260 540,210" fill="none" stroke="#2563eb" '
                     'stroke-dasharray="3 3" marker-end="url(#a)" marker-start="url(#a)"/>')
    parts.append('<text x="590" y="245" font-size="11" fill="#2563eb">one socketpair per spoke:</text>')
    parts.append('<text x="590" y="260" font-size="11" fill="#2563eb">typed, framed JSON messages</text>')
    parts.append("</svg>")
    Path(__file__).with_name("architecture.svg").write_text("\n".join(parts) + "\n")


if __name__ == "__main__":
    main()
