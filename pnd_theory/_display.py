"""How result objects show themselves: a short repr, an HTML table in Jupyter, a tidy table.

A result class takes :class:`ResultDisplay` as a base and gets

* ``repr(result)``: one line of its scalar fields, arrays by shape (``array(3, 4)``);
* ``result._repr_html_()``: the same as a two-column HTML table (what Jupyter shows);
* ``result.to_dataframe()``: a pandas DataFrame, one row of the scalar fields, or one row per
  entry when the result holds several 1-D arrays of one length (a batch-size sweep, a
  training history), scalars repeated as constant columns;
* ``result.plot(...)``: the picture of :mod:`pnd_theory._plotting` named by the class's
  ``_plot_function``, where a picture is what one wants.

The fields shown are the dataclass fields not starting with ``_`` (or ``_display_fields``
when a class declares them); a class may also supply ``_display_items()`` for values that
are not fields.  pandas is needed only by :meth:`ResultDisplay.to_dataframe`.
"""

from __future__ import annotations

import dataclasses
import html
import numbers

import numpy as np

from . import _plotting as plotting

#: longest text of one value in a repr (and in a cell of the HTML table) before it is cut
MAX_VALUE_CHARS = 80
MAX_CELL_CHARS = 400


def _is_array(value) -> bool:
    return isinstance(value, np.ndarray) or (hasattr(value, "shape") and hasattr(value, "dtype"))


def format_value(value, precision: int = 6, max_chars: int = MAX_VALUE_CHARS) -> str:
    """Short text for one value: numbers to ``precision`` significant digits, arrays by shape."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return repr(value if value is None else bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.{precision}g}"
    if _is_array(value):
        shape = "x".join(str(n) for n in value.shape) or "scalar"
        return f"array({shape})"
    if isinstance(value, ResultDisplay):  # a nested result: its name and size, its own repr shows the rest
        return f"{type(value).__name__}({len(value)} records)" if hasattr(value, "__len__") else f"{type(value).__name__}(...)"
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {format_value(v, precision)}" for k, v in value.items()) + "}"
    elif isinstance(value, (tuple, list)) and all(isinstance(v, numbers.Real) for v in value):
        text = "(" + ", ".join(format_value(v, precision) for v in value) + ("," if len(value) == 1 else "") + ")"
        text = text if isinstance(value, tuple) else "[" + text[1:-1] + "]"
    else:
        text = repr(value)
    if len(text) > max_chars:
        text = text[: max_chars - 3] + "..."
    return text


class ResultDisplay:
    """Mixin for result dataclasses: short repr, HTML table, tidy export, plot (module docstring)."""

    #: names of the fields to show; ``None``: every dataclass field not starting with ``_``
    _display_fields: tuple | None = None
    #: name of the function of :mod:`pnd_theory._plotting` behind :meth:`plot` (``None``: no plot)
    _plot_function: str | None = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # put the short repr in the class itself, so that @dataclass does not write its own
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = ResultDisplay.__repr__

    def _display_items(self) -> list:
        """``(name, value)`` pairs shown by the repr, the table and the export."""
        if self._display_fields is not None:
            names = self._display_fields
        elif dataclasses.is_dataclass(self):
            names = [f.name for f in dataclasses.fields(self) if not f.name.startswith("_")]
        else:
            names = [k for k in vars(self) if not k.startswith("_")]
        return [(name, getattr(self, name)) for name in names]

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}={format_value(value, 6)}" for name, value in self._display_items())
        return f"{type(self).__name__}({inner})"

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
            f"<td style='text-align:left'>{html.escape(format_value(value, 8, MAX_CELL_CHARS))}</td></tr>"
            for name, value in self._display_items())
        return (f"<table><caption style='text-align:left'><b>{html.escape(type(self).__name__)}</b></caption>"
                f"<tbody>{rows}</tbody></table>")

    def to_dataframe(self):
        """A pandas DataFrame of the result (module docstring); needs pandas."""
        try:
            import pandas as pd  # optional dependency, needed only here
        except ImportError as err:  # pragma: no cover - pandas is in the notebook extra
            raise ImportError("to_dataframe needs pandas: pip install 'pnd-theory[notebook]'") from err
        items = self._display_items()
        columns = {n: np.asarray(v) for n, v in items if _is_array(v) and np.ndim(v) == 1}
        lengths = {len(v) for v in columns.values()}
        scalars = {n: _plain(v) for n, v in items if not _is_array(v) and not isinstance(v, dict)}
        if len(columns) >= 2 and len(lengths) == 1:
            (length,) = lengths
            return pd.DataFrame({**columns, **{n: [v] * length for n, v in scalars.items()}})
        return pd.DataFrame([scalars])

    def plot(self, *args, **kwargs):
        """Draw the picture of this result (:mod:`pnd_theory._plotting`) and return ``None``, so
        that a notebook shows the picture alone; ``ax`` (matplotlib axes, a pair for two panels)
        draws into axes of one's own, which then hold the lines."""
        if self._plot_function is None:
            raise TypeError(f"{type(self).__name__} has no plot; its numbers are in to_dataframe()")
        getattr(plotting, self._plot_function)(self, *args, **kwargs)


def _plain(value):
    """A number, a string or None for one cell of the tidy table (other objects by repr)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    return repr(value)
