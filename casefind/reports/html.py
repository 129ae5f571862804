"""A self-contained, deterministic HTML coding-rate report with inline SVG charts.

No network requests of any kind: inline CSS, system fonts, charts drawn here as SVG, and a ``data:`` favicon
so the browser does not look for one. No timestamps or random ids, so identical input gives identical bytes.
Every piece of text from the data goes through :func:`html.escape`.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence

import pandas as pd

from casefind.reports.tidy_csv import format_cell

WIDTH, HEIGHT = 760, 340
MARGIN = {"left": 70, "right": 20, "top": 30, "bottom": 70}
COMMON = "#7b7d7d"
SPECIAL = "#ed8b00"
LINE = "#005eb8"
LIMIT = "#231f20"

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;margin:2rem auto;max-width:960px;
color:#212b32;line-height:1.45;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.25rem;margin-top:2rem;border-bottom:1px solid #d8dde0}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0 1rem}
th,td{border:1px solid #d8dde0;padding:.2rem .45rem;text-align:right}
th{background:#f0f4f5}td.text,th.text{text-align:left}
.notice{background:#fff9c4;border-left:4px solid #ffeb3b;padding:.5rem .8rem}
figure{margin:1rem 0}svg{max-width:100%;height:auto;background:#fff;border:1px solid #d8dde0}
figcaption{font-size:.85rem;color:#4c6272}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dt{font-weight:600}dd{margin:0;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.8rem;word-break:break-all}
"""


def esc(value) -> str:
    return html.escape(str(value), quote=True)


def num(value, decimals: int = 1) -> str:
    """Fixed-decimal text for display; empty for missing values."""
    return format_cell(value, decimals)


# --- scales and axes ------------------------------------------------------------------------------------


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round-number axis ticks covering ``low``..``high``."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        high = low + 1 if math.isfinite(low) else 1.0
        low = low if math.isfinite(low) else 0.0
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 10))
        value += step
    if ticks[-1] < high:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


class _Scale:
    def __init__(self, domain: tuple[float, float], pixels: tuple[float, float]):
        self.d0, self.d1 = domain
        self.p0, self.p1 = pixels

    def __call__(self, value: float) -> float:
        span = self.d1 - self.d0 or 1.0
        return self.p0 + (value - self.d0) / span * (self.p1 - self.p0)


def _f(value: float) -> str:
    return f"{value:.2f}"


def _svg_open(label: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" '
        f'height="{HEIGHT}" role="img" aria-label="{esc(label)}">',
        f"<title>{esc(label)}</title>",
    ]


def _y_axis(ticks: list[float], y: _Scale, title: str) -> list[str]:
    parts = []
    for tick in ticks:
        py = _f(y(tick))
        parts.append(
            f'<line x1="{MARGIN["left"]}" x2="{WIDTH - MARGIN["right"]}" y1="{py}" y2="{py}" '
            'stroke="#eef0f1" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{MARGIN["left"] - 6}" y="{py}" font-size="11" text-anchor="end" '
            f'dominant-baseline="middle">{esc(_tick_text(tick))}</text>'
        )
    mid = (MARGIN["top"] + HEIGHT - MARGIN["bottom"]) / 2
    parts.append(
        f'<text x="16" y="{_f(mid)}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 16 {_f(mid)})">{esc(title)}</text>'
    )
    return parts


def _tick_text(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


def _polyline(xs: Sequence[float], ys: Sequence[float], colour: str, dash: str = "", width: float = 1.5) -> str:
    points = " ".join(f"{_f(x)},{_f(y)}" for x, y in zip(xs, ys, strict=True))
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<polyline fill="none" stroke="{colour}" stroke-width="{width}"{dash_attr} points="{points}"/>'


def _finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and not pd.isna(v) and math.isfinite(float(v))]


# --- charts ---------------------------------------------------------------------------------------------


def spc_svg(spc: pd.DataFrame, title: str) -> str:
    """XmR chart: the rate per period, mean, process limits and special-cause points in orange.

    When some periods are suppressed (``spc["suppressed"]``) the chart has no lines: the published points only.
    """
    parts = _svg_open(title)
    values = _finite(spc["value"])
    if not values:
        parts.append(_message("No points to chart: see the caption."))
        return "\n".join(parts + ["</svg>"])
    lines = spc.iloc[0]
    extent = values + _finite([lines["lower_limit"], lines["upper_limit"]])
    ticks = nice_ticks(min(extent + [0.0]), max(extent))
    y = _Scale((ticks[0], ticks[-1]), (HEIGHT - MARGIN["bottom"], MARGIN["top"]))
    n = len(spc)
    x = _Scale((0, max(n - 1, 1)), (MARGIN["left"] + 10, WIDTH - MARGIN["right"] - 10))
    parts += _y_axis(ticks, y, "rate per 1000 child-years")
    left, right = x(0), x(max(n - 1, 1))
    for key, colour, dash in (
        ("mean", LINE, ""),
        ("upper_limit", LIMIT, "6 4"),
        ("lower_limit", LIMIT, "6 4"),
    ):
        if pd.notna(lines[key]) and math.isfinite(lines[key]):
            parts.append(_polyline([left, right], [y(lines[key])] * 2, colour, dash, 1.2))
    parts += _spc_series(spc, x, y)
    parts += _x_labels(list(spc["period"]), x)
    if "suppressed" in spc and spc["suppressed"].any():
        parts.append(_legend([("published month (others suppressed)", COMMON)]))
    else:
        parts.append(_legend([("common cause", COMMON), ("special cause", SPECIAL)]))
    return "\n".join(parts + ["</svg>"])


def _spc_series(spc: pd.DataFrame, x: _Scale, y: _Scale) -> list[str]:
    parts, run = [], []
    for i, value in enumerate(spc["value"]):
        if pd.isna(value):
            if len(run) > 1:
                parts.append(_polyline(*zip(*run, strict=True), COMMON))
            run = []
            continue
        run.append((x(i), y(value)))
    if len(run) > 1:
        parts.append(_polyline(*zip(*run, strict=True), COMMON))
    for i, row in enumerate(spc.itertuples(index=False)):
        if pd.notna(row.value):
            colour = SPECIAL if row.special_cause else COMMON
            parts.append(
                f'<circle cx="{_f(x(i))}" cy="{_f(y(row.value))}" r="4" fill="{colour}">'
                f"<title>{esc(row.period)}: {esc(num(row.value, 2))}</title></circle>"
            )
    return parts


def _x_labels(labels: list[str], x: _Scale) -> list[str]:
    step = max(1, math.ceil(len(labels) / 12))
    base = HEIGHT - MARGIN["bottom"] + 14
    parts = []
    for i in range(0, len(labels), step):
        px = _f(x(i))
        parts.append(
            f'<text x="{px}" y="{base}" font-size="11" text-anchor="end" '
            f'transform="rotate(-40 {px} {base})">{esc(labels[i])}</text>'
        )
    return parts


def _legend(items: list[tuple[str, str]]) -> str:
    parts = []
    x = MARGIN["left"]
    for label, colour in items:
        parts.append(f'<circle cx="{x + 5}" cy="14" r="5" fill="{colour}"/>')
        parts.append(f'<text x="{x + 14}" y="18" font-size="12">{esc(label)}</text>')
        x += 40 + 7 * len(label)
    return "".join(parts)


def _message(text: str) -> str:
    return f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" font-size="14" text-anchor="middle">{esc(text)}</text>'


def funnel_svg(
    points: pd.DataFrame,
    curve: pd.DataFrame,
    pooled_rate: float,
    title: str,
    y_title: str = "rate per 1000 child-years",
    x_title: str = "child-years",
) -> str:
    """Funnel plot: each unit's rate against its denominator, with 95% (dashed) and 99.8% (solid) limits."""
    parts = _svg_open(title)
    shown = points[points["rate"].notna() & points["denominator"].notna()]
    if shown.empty or curve.empty:
        parts.append(_message(f"No units to plot (all suppressed or without {x_title})."))
        return "\n".join(parts + ["</svg>"])
    x_ticks = nice_ticks(0.0, max(_finite(curve["denominator"]) + _finite(shown["denominator"])))
    x = _Scale((x_ticks[0], x_ticks[-1]), (MARGIN["left"], WIDTH - MARGIN["right"]))
    upper = _finite(shown["rate"]) + _finite(curve["upper_95"])
    top = min(max(upper), 3 * max(_finite(shown["rate"]) + [pooled_rate]))  # keep wide limits from flattening
    y_ticks = nice_ticks(0.0, top)
    y = _Scale((y_ticks[0], y_ticks[-1]), (HEIGHT - MARGIN["bottom"], MARGIN["top"]))
    parts.append(
        f'<clipPath id="plot-area"><rect x="{MARGIN["left"]}" y="{MARGIN["top"]}" '
        f'width="{WIDTH - MARGIN["left"] - MARGIN["right"]}" '
        f'height="{HEIGHT - MARGIN["top"] - MARGIN["bottom"]}"/></clipPath>'
    )
    parts += _y_axis(y_ticks, y, y_title)
    parts += _x_axis(x_ticks, x, x_title)
    parts.append('<g clip-path="url(#plot-area)">')
    xs = [x(v) for v in curve["denominator"]]
    for key, dash in (("95", "5 4"), ("998", "")):
        for side in ("lower", "upper"):
            column = curve[f"{side}_{key}"].clip(upper=y_ticks[-1] * 10)
            parts.append(_polyline(xs, [y(v) for v in column], LIMIT, dash, 1.2))
    parts.append(_polyline([xs[0], xs[-1]], [y(pooled_rate)] * 2, LINE, "", 1.2))
    for row in shown.itertuples(index=False):
        colour = SPECIAL if getattr(row, "outside_95", False) else COMMON
        cx, cy = _f(x(row.denominator)), _f(y(min(row.rate, y_ticks[-1])))
        parts.append(
            f'<circle cx="{cx}" cy="{cy}" r="5" fill="{colour}"><title>{esc(row.group)}: '
            f"{esc(num(row.rate, 2))}</title></circle>"
        )
        parts.append(
            f'<text x="{_f(x(row.denominator) + 7)}" y="{cy}" font-size="10" '
            f'dominant-baseline="middle">{esc(row.group)}</text>'
        )
    parts.append("</g>")
    parts.append(_legend([("within 95% limits", COMMON), ("outside 95% limits", SPECIAL)]))
    return "\n".join(parts + ["</svg>"])


def _x_axis(ticks: list[float], x: _Scale, title: str) -> list[str]:
    base = HEIGHT - MARGIN["bottom"]
    parts = [f'<line x1="{MARGIN["left"]}" x2="{WIDTH - MARGIN["right"]}" y1="{base}" y2="{base}" stroke="#4c6272"/>']
    for tick in ticks:
        px = _f(x(tick))
        parts.append(
            f'<text x="{px}" y="{base + 16}" font-size="11" text-anchor="middle">{esc(_tick_text(tick))}</text>'
        )
    parts.append(
        f'<text x="{_f((MARGIN["left"] + WIDTH - MARGIN["right"]) / 2)}" y="{HEIGHT - 20}" '
        f'font-size="12" text-anchor="middle">{esc(title)}</text>'
    )
    return parts


# --- page -----------------------------------------------------------------------------------------------


def table_html(frame: pd.DataFrame, columns: Sequence[tuple[str, str, int | None]], caption: str) -> str:
    """A table; ``columns`` are (column, heading, decimals or None for text)."""
    head = "".join(f'<th class="{"text" if d is None else "num"}">{esc(h)}</th>' for _, h, d in columns)
    rows = []
    for record in frame.itertuples(index=False):
        values = record._asdict()
        cells = "".join(
            f'<td class="text">{esc(format_cell(values[c]))}</td>'
            if d is None
            else f"<td>{esc(num(values[c], d))}</td>"
            for c, _, d in columns
        )
        rows.append(f"<tr>{cells}</tr>")
    return (
        f"<table><caption>{esc(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
    )


def provenance_html(provenance: Mapping) -> str:
    """Provenance as a definition list; nested values as canonical JSON (sorted keys)."""
    items = []
    for key in sorted(provenance, key=str):
        value = provenance[key]
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        items.append(f"<dt>{esc(key)}</dt><dd>{esc(text)}</dd>")
    return f"<dl>{''.join(items)}</dl>"


def page(title: str, sections: Sequence[tuple[str, str]], notices: Sequence[str] = ()) -> str:
    """The whole document: ``notices`` (plain text) at the top, then ``sections`` (heading, escaped HTML)."""
    body = [f"<h1>{esc(title)}</h1>"]
    body += [f'<p class="notice">{esc(notice)}</p>' for notice in notices]
    for heading, content in sections:
        slug = "".join(ch if ch.isalnum() else "-" for ch in heading.lower())
        body.append(f'<section id="{esc(slug)}"><h2>{esc(heading)}</h2>\n{content}\n</section>')
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en-GB">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src '
        "'unsafe-inline'; "
        'img-src data:">\n'
        '<link rel="icon" href="data:,">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )
