"""Comparison tables and bar charts in which every number carries its interval.

Part of :mod:`course_lib.evaluation` (import them from there): :func:`comparison_table` renders
models x metrics as text for a notebook cell, :func:`plot_estimates` draws the bars with their
interval error bars and reference lines (a Bayes ceiling, a clean-data reference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from course_lib.evaluation import Estimate, _check_estimate

__all__ = ["comparison_table", "plot_estimates"]


def _rows_as_columns(
    rows: Mapping[str, Estimate | Mapping[str, Estimate]],
) -> tuple[list[str], dict[str, dict[str, Estimate]]]:
    if not rows:
        raise ValueError("rows must hold at least one model")
    table: dict[str, dict[str, Estimate]] = {}
    columns: list[str] = []
    for name, entry in rows.items():
        if isinstance(entry, Estimate):
            entry = {"value": entry}
        if not isinstance(entry, Mapping) or not entry:
            raise ValueError(
                f"rows[{name!r}] must be an Estimate or a non-empty mapping of Estimates "
                f"(e.g. a RunSummary), got {type(entry).__name__}"
            )
        for column, estimate in entry.items():
            _check_estimate(estimate, f"rows[{name!r}][{column!r}]")
            if column not in columns:
                columns.append(column)
        table[str(name)] = dict(entry)
    return columns, table


def comparison_table(
    rows: Mapping[str, Estimate | Mapping[str, Estimate]],
    *,
    columns: Sequence[str] | None = None,
    title: str | None = None,
    references: Mapping[str, float] | None = None,
    digits: int = 3,
    fill: str | None = None,
    row_header: str = "model",
) -> str:
    """Render models x metrics as a text table in which every number carries its interval.

    Args:
        rows: ``model name -> Estimate`` or ``model name -> {metric: Estimate}`` (a
            :class:`RunSummary` is such a mapping).
        columns: which metrics to show, in order (default: all, in first-seen order).
        title: an optional first line.
        references: lines printed under the table, e.g. ``{"Bayes ceiling": 0.93}``.
        digits: decimals.
        fill: what to print where a row lacks a column (e.g. ``"-"`` for a model that has no
            such measurement); ``None`` (the default) raises instead.
        row_header: the heading of the first column (rows may be groups rather than models).

    Returns:
        The table as a string; print it in a notebook cell.

    Raises:
        ValueError: if ``rows`` is empty or holds something other than Estimates, or a
            requested column is missing from a row and ``fill`` is None.
    """
    found, table = _rows_as_columns(rows)
    shown = list(columns) if columns is not None else found
    for name, entry in table.items():
        for column in shown:
            if column not in entry and fill is None:
                raise ValueError(f"columns asks for {column!r}, which rows[{name!r}] lacks")
    cells = {name: [entry[c].format(digits) if c in entry else str(fill) for c in shown]
             for name, entry in table.items()}
    name_width = max(len(row_header), *(len(name) for name in table))
    widths = [
        max(len(column), *(len(cells[name][i]) for name in table))
        for i, column in enumerate(shown)
    ]
    present = [entry[c] for entry in table.values() for c in shown if c in entry]
    methods = {estimate.method for estimate in present}
    confidences = {estimate.confidence for estimate in present}
    seeds = {estimate.n for estimate in present if estimate.method == "t"}
    notes = []
    if "t" in methods:
        counts = ", ".join(str(n) for n in sorted(seeds))
        notes.append(f"mean over {counts} seeds [t interval]")
    if "wilson" in methods:
        notes.append("accuracy on the test set [Wilson interval]")
    level = ", ".join(f"{round(100 * c)} %" for c in sorted(confidences))
    lines = []
    if title:
        lines.append(title)
    lines.append(f"({'; '.join(notes)}, {level})")
    header = row_header.ljust(name_width) + "".join(
        "  " + column.rjust(width) for column, width in zip(shown, widths)
    )
    lines.append(header)
    lines.append("-" * len(header))
    for name in table:
        lines.append(
            name.ljust(name_width)
            + "".join("  " + cell.rjust(width) for cell, width in zip(cells[name], widths))
        )
    for label, value in (references or {}).items():
        lines.append(f"{label}: {float(value):.{digits}f}")
    return "\n".join(lines)


def plot_estimates(
    ax: Any,
    estimates: Mapping[str, Estimate],
    *,
    references: Mapping[str, float] | None = None,
    ylabel: str = "accuracy",
    title: str | None = None,
    show_values: bool = True,
) -> Any:
    """Bar chart of ``estimates`` on a matplotlib ``ax`` with interval error bars.

    Each bar is the mean, its error bar the interval (asymmetric for Wilson); ``references``
    draws dashed horizontal lines (e.g. a Bayes ceiling or a clean-data reference).
    Individual seeds are drawn as dots when available. Returns ``ax``.

    Raises:
        ValueError: if ``estimates`` is empty or holds something other than Estimates.
    """
    if not estimates:
        raise ValueError("estimates must hold at least one model")
    names = list(estimates)
    for name in names:
        _check_estimate(estimates[name], f"estimates[{name!r}]")
    means = [estimates[n].mean for n in names]
    errors = [
        [estimates[n].mean - estimates[n].low for n in names],
        [estimates[n].high - estimates[n].mean for n in names],
    ]
    positions = list(range(len(names)))
    ax.bar(positions, means, yerr=errors, capsize=4, color="#8fb3d9", edgecolor="#2b5d8a")
    for position, name in zip(positions, names):
        values = estimates[name].values
        if values:
            ax.plot([position] * len(values), values, ".", color="#1b3a57", ms=4, zorder=3)
        if show_values:
            ax.annotate(
                f"{estimates[name].mean:.3f}",
                (position, estimates[name].high),
                textcoords="offset points",
                xytext=(0, 3),
                ha="center",
                fontsize=8,
            )
    styles = ["--", ":", "-."]
    for i, (label, value) in enumerate((references or {}).items()):
        ax.axhline(float(value), linestyle=styles[i % len(styles)], color="0.35", label=label)
    if references:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xticks(positions)
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax
