"""Comparison tables and bar charts in which every number carries its interval.

Part of :mod:`course_lib.evaluation` (import them from there): :func:`comparison_table` renders
models x metrics as text for a notebook cell, :func:`plot_estimates` draws the bars with their
interval error bars and reference lines (a Bayes ceiling, a clean-data reference).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from course_lib._validation import (
    MAX_LOOP,
    ArgumentTypeError,
    check_allocation,
    check_flag,
    check_number,
    check_sequence,
    check_text,
    describe,
)
from course_lib.evaluation import _check_estimate
from course_lib.evaluation_intervals import Estimate, _check_digits

__all__ = ["comparison_table", "plot_estimates"]


def _check_references(references: Mapping[str, float] | None) -> dict[str, float]:
    """``label -> value``: string labels, finite numbers (a NaN line would print "nan")."""
    if references is None:
        return {}
    if not isinstance(references, Mapping):
        raise ArgumentTypeError(f"references must be a mapping label -> number, got "
                                f"{describe(references)}")
    checked = {}
    for label, value in references.items():
        check_text("references' labels", label)
        checked[label] = check_number(f"references[{label!r}]", value)
    return checked


def _check_optional_text(name: str, value: str | None) -> str | None:
    return None if value is None else check_text(name, value)


def _rows_as_columns(
    rows: Mapping[str, Estimate | Mapping[str, Estimate]],
) -> tuple[list[str], dict[str, dict[str, Estimate]]]:
    if not isinstance(rows, Mapping):
        raise ArgumentTypeError(f"rows must be a mapping of model name -> Estimate (or -> "
                                f"{{metric: Estimate}}), got {describe(rows)}")
    if not rows:
        raise ValueError("rows must hold at least one model")
    check_allocation("rows", len(rows), MAX_LOOP, "iterations")
    table: dict[str, dict[str, Estimate]] = {}
    columns: list[str] = []
    for name, entry in rows.items():
        if isinstance(entry, Estimate):
            entry = {"value": entry}
        if not isinstance(entry, Mapping) or not entry:
            raise ArgumentTypeError(
                f"rows[{name!r}] must be an Estimate or a non-empty mapping of Estimates "
                f"(e.g. a RunSummary), got {type(entry).__name__}"
            )
        for column, estimate in entry.items():
            if not isinstance(column, str):
                raise ArgumentTypeError(f"rows[{name!r}] must name its metrics with strings, "
                                        f"got the key {describe(column)}")
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
        ValueError / TypeError: naming the argument: ``rows`` empty, not a mapping or holding
            something other than Estimates; a requested column missing from a row while
            ``fill`` is None; ``columns`` not a list of names; ``references`` not finite
            numbers; ``digits`` not an integer from 0 to 12; ``title``, ``fill`` or
            ``row_header`` not a string.
    """
    found, table = _rows_as_columns(rows)
    references = _check_references(references)
    digits = _check_digits(digits)
    title = _check_optional_text("title", title)
    fill = _check_optional_text("fill", fill)
    row_header = check_text("row_header", row_header)
    if columns is not None:
        columns = [check_text(f"columns[{i}]", column) for i, column in
                   enumerate(check_sequence("columns", columns, of="metric names"))]
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
    for label, value in references.items():
        lines.append(f"{label}: {value:.{digits}f}")
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
        ValueError / TypeError: naming the argument: ``estimates`` empty, not a mapping or
            holding something other than Estimates; ``ax`` not a matplotlib Axes;
            ``references`` not finite numbers; ``ylabel`` or ``title`` not a string.
    """
    if not all(callable(getattr(ax, method, None)) for method in ("bar", "plot", "axhline")):
        raise ArgumentTypeError(f"ax must be a matplotlib Axes (e.g. figure.add_subplot()), "
                                f"got {describe(ax)}")
    if not isinstance(estimates, Mapping):
        raise ArgumentTypeError(f"estimates must be a mapping of model name -> Estimate, got "
                                f"{describe(estimates)}")
    if not estimates:
        raise ValueError("estimates must hold at least one model")
    check_allocation("estimates", len(estimates), MAX_LOOP, "iterations")
    references = _check_references(references)
    ylabel = check_text("ylabel", ylabel)
    title = _check_optional_text("title", title)
    show_values = check_flag("show_values", show_values)
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
    for i, (label, value) in enumerate(references.items()):
        ax.axhline(value, linestyle=styles[i % len(styles)], color="0.35", label=label)
    if references:
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xticks(positions)
    ax.set_xticklabels(names, rotation=20, ha="right")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    return ax
