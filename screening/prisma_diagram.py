"""The PRISMA 2020 flow diagram (new reviews), as SVG text or a PNG drawn by matplotlib.

One layout (boxes with their lines of text, and arrows) is computed from the
counts; the SVG writer and the PNG painter both draw that same layout. Every
line of a box is its own ``<text>`` node inside ``<g id="box-KEY">``, so the
numbers can be read back from the file. Nothing is drawn unless the counts pass
:func:`screening.prisma.check_identities`.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from .errors import ConfigError
from .outputs import Protected, output_path, write_output
from .prisma import PROVISIONAL, Flow, PrismaCounts, awaiting_notes, check_identities

FORMATS = ("svg", "png")
FONT = "Arial, Helvetica, sans-serif"
FONT_SIZE = 12
LINE = 16  # px between baselines
PAD = 10
COL_W = 300
GAP_X = 50
GAP_Y = 36
BAND_W = 34
MARGIN = 16
WRAP = 44  # characters per line in a box
PNG_DPI = 150

WHITE, YELLOW, GREY, BLUE = "#ffffff", "#ffc000", "#d9d9d9", "#9dc3e6"


@dataclass
class Box:
    key: str
    col: int
    row: int
    lines: list[str]
    fill: str = WHITE
    align: str = "middle"  # or "start"
    span: int = 1
    x: float = 0
    y: float = 0
    w: float = 0
    h: float = 0


@dataclass(frozen=True)
class Arrow:
    points: tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Layout:
    width: float
    height: float
    boxes: list[Box]
    bands: list[Box]
    arrows: list[Arrow]


def _n(n: int) -> str:
    return f"(n = {n:,})"


def _wrap(lines: list[str]) -> list[str]:
    out: list[str] = []
    for line in lines:
        indent = line[: len(line) - len(line.lstrip())]
        out.extend(textwrap.wrap(line, WRAP, subsequent_indent=indent + "  ") or [""])
    return out


def _excluded_lines(flow: Flow) -> list[str]:
    if not flow.excluded:
        return ["Reports excluded", _n(0)]
    return ["Reports excluded:", *(f"{reason} {_n(n)}" for reason, n in flow.excluded)]


def _identified_lines(c: PrismaCounts) -> list[str]:
    lines = ["Records identified from:", f"Databases {_n(c.database_results)}"]
    lines += [f"    {name} {_n(n)}" for name, n in c.databases]
    lines.append(f"Registers {_n(c.register_results)}")
    lines += [f"    {name} {_n(n)}" for name, n in c.registers]
    return lines


def _stop_lines(c: PrismaCounts) -> list[str]:
    """A note per stop under the automation count: the rule, its claim, and FORCED when it was."""
    lines = []
    for stop in c.stops:
        claim = f"{stop.target:.0%} recall, {stop.confidence:.0%} confidence"
        lines.append(
            f"FORCED stop ({stop.rule} did not say stop; {claim})"
            if stop.forced
            else f"stopped by {stop.rule}: ≥ {claim}"
        )
    return lines


def _boxes(c: PrismaCounts) -> list[Box]:
    boxes = _flow_boxes(c)
    notes = awaiting_notes(c)
    for box in boxes:
        if box.key in notes:
            box.lines.append(notes[box.key])
    if c.provisional:
        boxes[0].lines.append(f"{PROVISIONAL}: screening is not finished")
    for box in boxes:
        box.lines = _wrap(box.lines) if box.span == 1 else box.lines
    return boxes


def _flow_boxes(c: PrismaCounts) -> list[Box]:
    d = c.dbr
    boxes = [
        Box("newstud", 0, 0, ["Identification of new studies via databases and registers"], YELLOW, span=2),
        Box("identified", 0, 1, _identified_lines(c), align="start"),
        Box(
            "removed",
            1,
            1,
            [
                "Records removed before screening:",
                f"Duplicate records {_n(c.duplicates)}",
                f"Records marked as ineligible by automation tools {_n(c.excluded_automatic)}",
                *(f"    ({line})" for line in _stop_lines(c)),
                f"Records removed for other reasons {_n(c.excluded_other)}",
            ],
            align="start",
        ),
        Box("records_screened", 0, 2, ["Records screened", _n(c.records_screened)]),
        Box("records_excluded", 1, 2, ["Records excluded", _n(c.records_excluded)]),
        Box("dbr_sought_reports", 0, 3, ["Reports sought for retrieval", _n(d.sought)]),
        Box("dbr_notretrieved_reports", 1, 3, ["Reports not retrieved", _n(d.not_retrieved)]),
        Box("dbr_assessed", 0, 4, ["Reports assessed for eligibility", _n(d.assessed)]),
        Box("dbr_excluded", 1, 4, _excluded_lines(d), align="start" if d.excluded else "middle"),
        Box(
            "new_studies",
            0,
            5,
            ["New studies included in review", _n(c.new_studies), "Reports of new included studies", _n(c.new_reports)],
        ),
    ]
    if c.has_other_methods:
        o = c.other
        boxes += [
            Box("othstud", 2, 0, ["Identification of new studies via other methods"], GREY, span=2),
            Box(
                "other_identified",
                2,
                1,
                [
                    "Records identified from:",
                    f"Websites {_n(c.websites)}",
                    f"Organisations {_n(c.organisations)}",
                    f"Citation searching {_n(c.citations)}",
                ],
                align="start",
            ),
            Box("other_sought_reports", 2, 3, ["Reports sought for retrieval", _n(o.sought)]),
            Box("other_notretrieved_reports", 3, 3, ["Reports not retrieved", _n(o.not_retrieved)]),
            Box("other_assessed", 2, 4, ["Reports assessed for eligibility", _n(o.assessed)]),
            Box("other_excluded", 3, 4, _excluded_lines(o), align="start" if o.excluded else "middle"),
        ]
    return boxes


def _place(boxes: list[Box]) -> tuple[float, float, dict[int, tuple[float, float]]]:
    """Give every box its position; rows take the height of their tallest box."""
    rows = max(b.row for b in boxes) + 1
    heights = [max((len(b.lines) * LINE + 2 * PAD for b in boxes if b.row == r), default=0) for r in range(rows)]
    tops, y = [], MARGIN
    for h in heights:
        tops.append(y)
        y += h + GAP_Y
    left = MARGIN + BAND_W + GAP_X / 2
    for b in boxes:
        b.x = left + b.col * (COL_W + GAP_X)
        b.w = COL_W * b.span + GAP_X * (b.span - 1)
        b.y, b.h = tops[b.row], heights[b.row]
    cols = max(b.col + b.span for b in boxes)
    width = left + cols * COL_W + (cols - 1) * GAP_X + MARGIN
    spans = {r: (tops[r], tops[r] + heights[r]) for r in range(rows)}
    return width, y - GAP_Y + MARGIN, spans


def _bands(spans: dict[int, tuple[float, float]]) -> list[Box]:
    bands = []
    for key, label, first, last in (
        ("identification", "Identification", 1, 1),
        ("screening", "Screening", 2, 4),
        ("included", "Included", 5, 5),
    ):
        top, bottom = spans[first][0], spans[last][1]
        bands.append(Box(key, -1, first, [label], BLUE, x=MARGIN, y=top, w=BAND_W, h=bottom - top))
    return bands


def _right(b: Box) -> tuple[float, float]:
    return (b.x + b.w, b.y + b.h / 2)


def _left(b: Box) -> tuple[float, float]:
    return (b.x, b.y + b.h / 2)


def _down(a: Box, b: Box) -> Arrow:
    x = a.x + a.w / 2
    return Arrow(((x, a.y + a.h), (x, b.y)))


def _arrows(by: dict[str, Box]) -> list[Arrow]:
    arrows = [
        _down(by["identified"], by["records_screened"]),
        _down(by["records_screened"], by["dbr_sought_reports"]),
        _down(by["dbr_sought_reports"], by["dbr_assessed"]),
        _down(by["dbr_assessed"], by["new_studies"]),
    ]
    for a, b in (
        ("identified", "removed"),
        ("records_screened", "records_excluded"),
        ("dbr_sought_reports", "dbr_notretrieved_reports"),
        ("dbr_assessed", "dbr_excluded"),
        ("other_sought_reports", "other_notretrieved_reports"),
        ("other_assessed", "other_excluded"),
    ):
        if a in by:
            arrows.append(Arrow((_right(by[a]), _left(by[b]))))
    if "other_identified" in by:
        arrows.append(_down(by["other_identified"], by["other_sought_reports"]))
        arrows.append(_down(by["other_sought_reports"], by["other_assessed"]))
        src, dst = by["other_assessed"], by["new_studies"]
        x = src.x + src.w / 2
        y = dst.y + dst.h / 2
        arrows.append(Arrow(((x, src.y + src.h), (x, y), _right(dst))))
    return arrows


def layout(counts: PrismaCounts) -> Layout:
    """Boxes, stage bands and arrows of the diagram, in pixels."""
    boxes = _boxes(counts)
    width, height, spans = _place(boxes)
    by = {b.key: b for b in boxes}
    return Layout(width, height, boxes, _bands(spans), _arrows(by))


# -- SVG -----------------------------------------------------------------------------
def _text_x(b: Box) -> float:
    return b.x + PAD if b.align == "start" else b.x + b.w / 2


def _baselines(b: Box) -> list[float]:
    top = b.y + (b.h - len(b.lines) * LINE) / 2
    return [top + (i + 1) * LINE - 4 for i in range(len(b.lines))]


def _svg_box(b: Box) -> str:
    parts = [
        f'<g id="box-{b.key}" class="prisma-box">',
        f'<rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" height="{b.h:.1f}" fill="{b.fill}" stroke="#000000"/>',
    ]
    for line, base in zip(b.lines, _baselines(b), strict=True):
        parts.append(
            f'<text x="{_text_x(b):.1f}" y="{base:.1f}" text-anchor="{b.align}" xml:space="preserve">'
            f"{escape(line)}</text>"
        )
    parts.append("</g>")
    return "".join(parts)


def _svg_band(b: Box) -> str:
    cx, cy = b.x + b.w / 2, b.y + b.h / 2
    return (
        f'<g id="box-{b.key}" class="prisma-stage"><rect x="{b.x:.1f}" y="{b.y:.1f}" width="{b.w:.1f}" '
        f'height="{b.h:.1f}" rx="6" fill="{b.fill}" stroke="#000000"/>'
        f'<text x="{cx:.1f}" y="{cy + 4:.1f}" text-anchor="middle" font-weight="bold" '
        f'transform="rotate(-90 {cx:.1f} {cy:.1f})">{escape(b.lines[0])}</text></g>'
    )


def _svg_arrow(a: Arrow) -> str:
    points = " ".join(f"{x:.1f},{y:.1f}" for x, y in a.points)
    return f'<polyline points="{points}" fill="none" stroke="#000000" marker-end="url(#arrow)"/>'


def to_svg(counts: PrismaCounts, *, title: str = "PRISMA 2020 flow diagram") -> str:
    """The diagram as an SVG document (raises PrismaIdentityError if the counts do not add up)."""
    check_identities(counts)
    lay = layout(counts)
    title = f"{title} ({PROVISIONAL.lower()})" if counts.provisional else title
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" height="{lay.height:.0f}" '
        f'viewBox="0 0 {lay.width:.0f} {lay.height:.0f}" font-family={quoteattr(FONT)} font-size="{FONT_SIZE}">'
        f"<title>{escape(title)}</title>"
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#000000"/></marker></defs>'
        f'<rect width="100%" height="100%" fill="{WHITE}"/>'
    )
    body = [_svg_band(b) for b in lay.bands] + [_svg_box(b) for b in lay.boxes] + [_svg_arrow(a) for a in lay.arrows]
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + head + "\n".join(body) + "</svg>\n"


# -- PNG -----------------------------------------------------------------------------
def to_png(counts: PrismaCounts, path: str | Path, *, dpi: int = PNG_DPI) -> Path:
    """Paint the same layout with matplotlib and save it as PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, Rectangle

    check_identities(counts)
    lay = layout(counts)
    fig = Figure(figsize=(lay.width / 100, lay.height / 100), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, lay.width)
    ax.set_ylim(lay.height, 0)
    ax.axis("off")
    size = FONT_SIZE * 72 / 100  # one layout pixel is 1/100 inch; font sizes are in points
    for b in lay.bands:
        ax.add_patch(Rectangle((b.x, b.y), b.w, b.h, facecolor=b.fill, edgecolor="black"))
        ax.text(
            b.x + b.w / 2,
            b.y + b.h / 2,
            b.lines[0],
            rotation=90,
            ha="center",
            va="center",
            fontsize=size,
            fontweight="bold",
        )
    for b in lay.boxes:
        ax.add_patch(Rectangle((b.x, b.y), b.w, b.h, facecolor=b.fill, edgecolor="black"))
        ha = "left" if b.align == "start" else "center"
        for line, base in zip(b.lines, _baselines(b), strict=True):
            ax.text(_text_x(b), base, line, ha=ha, va="baseline", fontsize=size, family="sans-serif")
    for a in lay.arrows:
        for (x0, y0), (x1, y1) in zip(a.points, a.points[1:], strict=False):
            last = (x1, y1) == a.points[-1]
            ax.add_patch(
                FancyArrowPatch(
                    (x0, y0),
                    (x1, y1),
                    arrowstyle="-|>" if last else "-",
                    mutation_scale=10,
                    color="black",
                    shrinkA=0,
                    shrinkB=0,
                )
            )
    path = Path(path)
    fig.savefig(path, format="png", dpi=dpi, facecolor="white")
    return path


def write_diagram(counts: PrismaCounts, path: str | Path, fmt: str | None = None, *, protect: Protected = None) -> Path:
    """Write the diagram to ``path`` as SVG or PNG (from ``fmt`` or the file's suffix).

    Written atomically, and never onto ``protect`` (the project's database): see :mod:`screening.outputs`.
    """
    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not a diagram format ({', '.join(FORMATS)})")
    if fmt == "png":
        check_identities(counts)  # before any file is touched
        with output_path(path, protect=protect) as tmp:
            to_png(counts, tmp)
        return path
    return write_output(path, to_svg(counts), protect=protect)
