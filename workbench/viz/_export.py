"""Export figures: HTML always (sharing one plotly.js per folder); PNG/SVG/PDF through
kaleido >= 1 when a Chrome is available."""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

STATIC_FORMATS = ("png", "svg", "pdf")
FORMATS = ("html", *STATIC_FORMATS)
#: How an HTML export loads plotly.js (export_figure's ``plotlyjs``) -> plotly's include_plotlyjs.
PLOTLYJS_MODES: dict[str, str | bool] = {"directory": "directory", "inline": True, "cdn": "cdn"}

#: Where Debian/Ubuntu put a headless-capable Chrome (the wrapper in /usr/bin is a shell script).
_TYPICAL_CHROMES = (
    "/usr/lib/chromium-headless-shell/chromium-headless-shell",
    "/usr/lib/chromium/chromium",
    "/usr/lib/chromium-browser/chromium-browser",
    "/opt/google/chrome/chrome",
)
_CHROME_NAMES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome",
                 "google-chrome-stable", "chrome")

_NO_STATIC = ("static export to {fmt} needs kaleido>=1 and a Chrome/Chromium: {why}. Install "
              "them with `pip install 'kaleido>=1'` and a Chrome (e.g. Debian's "
              "chromium-headless-shell, then set BROWSER_PATH=/usr/lib/chromium-headless-shell/"
              "chromium-headless-shell, or run `plotly_get_chrome`). HTML export works without "
              "them.")


def _executable(path: str | None) -> bool:
    return path is not None and path != "" and os.path.isfile(path) and os.access(path, os.X_OK)


def find_chrome() -> str | None:
    """Path of a Chrome/Chromium kaleido can drive, or None: ``$BROWSER_PATH`` first, then the
    usual install locations and ``PATH``, then the copy ``plotly_get_chrome`` downloads."""
    env = os.environ.get("BROWSER_PATH")
    if env:
        return env if _executable(env) else None  # an explicit but broken setting is not ignored
    for path in _TYPICAL_CHROMES:
        if _executable(path):
            return path
    for name in _CHROME_NAMES:
        found = shutil.which(name)
        if _executable(found):
            return found
    if importlib.util.find_spec("choreographer") is not None:
        try:
            from choreographer.browsers.chromium import Chromium

            return Chromium.find_browser(skip_local=False)
        except Exception:  # best effort: a broken install simply means "no Chrome"
            return None
    return None


def _kaleido_problem() -> str | None:
    """Why kaleido cannot export (missing or older than 1.0), or None when it can."""
    if importlib.util.find_spec("kaleido") is None:
        return "kaleido is not installed"
    try:
        major = int(importlib.metadata.version("kaleido").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return None
    return None if major >= 1 else f"kaleido {importlib.metadata.version('kaleido')} is < 1"


def static_export_available() -> bool:
    """Whether PNG/SVG/PDF export can work here (kaleido >= 1 and a Chrome were found)."""
    return _kaleido_problem() is None and find_chrome() is not None


@contextlib.contextmanager
def _browser_path(path: str) -> Iterator[None]:
    """Point kaleido at ``path`` for one export, restoring ``BROWSER_PATH`` afterwards."""
    before = os.environ.get("BROWSER_PATH")
    os.environ["BROWSER_PATH"] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("BROWSER_PATH", None)
        else:
            os.environ["BROWSER_PATH"] = before


def _static_chrome(fmt: str) -> str:
    """The Chrome to export ``fmt`` with; RuntimeError saying what is missing otherwise."""
    problem = _kaleido_problem()
    chrome = find_chrome()
    if problem is None and chrome is None:
        env = os.environ.get("BROWSER_PATH")
        problem = (f"BROWSER_PATH={env!r} is not an executable file" if env
                   else "no Chrome/Chromium was found")
    if problem is not None:
        raise RuntimeError(_NO_STATIC.format(fmt=fmt, why=problem))
    return str(chrome)


def _check_format(path: Path) -> str:
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format {fmt!r} in {path}; allowed: "
                         f"{', '.join(FORMATS)}")
    return fmt


def _write_static(figs: Sequence[go.Figure], paths: Sequence[Path], *, width: int, height: int,
                  scale: float) -> None:
    """Static images in one kaleido session (one Chrome start for all of them)."""
    if not figs:
        return
    chrome = _static_chrome(paths[0].suffix.lstrip(".").lower())
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
    with _browser_path(chrome):
        pio.write_images(list(figs), [str(p) for p in paths],
                         format=[p.suffix.lstrip(".").lower() for p in paths],
                         width=width, height=height, scale=scale)


#: The plotly.js bundle HTML exports share, written once beside them.
PLOTLY_BUNDLE = "plotly.min.js"


def _write_bundle(folder: Path) -> Path:
    """``folder/plotly.min.js``, (re)written when missing or not this plotly's bundle."""
    from plotly.offline import get_plotlyjs

    path = folder / PLOTLY_BUNDLE
    code = get_plotlyjs().encode()
    if not path.is_file() or path.stat().st_size != len(code) or path.read_bytes() != code:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{PLOTLY_BUNDLE}.{os.getpid()}.tmp")
        tmp.write_bytes(code)
        os.replace(tmp, path)
    return path


def export_figure(fig: go.Figure, path: str | Path, *, width: int = 700, height: int = 450,
                  scale: float = 2.0, plotlyjs: str = "directory") -> Path:
    """Write ``fig`` to ``path``; the suffix picks the format (.html, .png, .svg, .pdf).

    HTML loads plotly.js from ``plotlyjs``: ``"directory"`` (default) one ``plotly.min.js``
    beside the file, shared by every figure of the folder (4.8 MB once, not per figure; works
    offline), ``"inline"`` embedded in the file (self-contained), or ``"cdn"``.
    """
    path = Path(path)
    fmt = _check_format(path)
    if plotlyjs not in PLOTLYJS_MODES:
        raise ValueError(f"unknown plotlyjs {plotlyjs!r}; allowed: {list(PLOTLYJS_MODES)}")
    if fmt == "html":
        path.parent.mkdir(parents=True, exist_ok=True)
        if plotlyjs == "directory":
            _write_bundle(path.parent)
        fig.write_html(path, include_plotlyjs=PLOTLYJS_MODES[plotlyjs], full_html=True)
        return path
    _write_static([fig], [path], width=width, height=height, scale=scale)
    return path


def export_figures(figures: Mapping[str, go.Figure], folder: str | Path,
                   formats: Sequence[str] = ("html",), *, width: int = 700, height: int = 450,
                   scale: float = 2.0, plotlyjs: str = "directory") -> pd.DataFrame:
    """Write every ``{name: figure}`` into ``folder`` in each format; a table of what was written.

    The HTML files share one ``plotly.min.js`` in ``folder`` (see :func:`export_figure`; it is
    not a row of the table). Static formats need :func:`static_export_available` (a clear
    RuntimeError otherwise); they are written in one kaleido session, much faster than one
    export per image.
    """
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise ValueError(f"unknown formats {bad}; allowed: {list(FORMATS)}")
    folder = Path(folder)
    jobs = [(name, fig, folder / f"{name}.{fmt}") for name, fig in figures.items()
            for fmt in formats]
    static = [(fig, path) for _, fig, path in jobs if path.suffix != ".html"]
    _write_static([f for f, _ in static], [p for _, p in static], width=width, height=height,
                  scale=scale)
    for _, fig, path in jobs:
        if path.suffix == ".html":
            export_figure(fig, path, plotlyjs=plotlyjs)
    return pd.DataFrame([{"figure": name, "format": path.suffix[1:], "path": str(path),
                          "bytes": path.stat().st_size} for name, _, path in jobs],
                        columns=["figure", "format", "path", "bytes"])
