"""Self-contained offline HTML pages (the conv lab; later the backprop explorer).

A page is one file: its CSS, its script and its data (JSON) are inlined, and a Content Security
Policy forbids every network request (``default-src 'none'``), so it opens from disk, from an
e-mail or inside a notebook, with no server and no network. :func:`page_html` assembles one,
:func:`write_page` writes it atomically (temporary file in the same directory, then
``os.replace``), :func:`asset` reads a template shipped in this folder.
"""

from __future__ import annotations

import json
import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["CSP", "asset", "json_for_script", "page_html", "write_page", "write_text_atomic"]

#: The Content Security Policy of every page: inline style and script only, images from data:
#: URLs, nothing fetched.
CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"


def asset(name: str) -> str:
    """The text of a template file shipped in ``tinygrad_conv/web`` (e.g. ``'lab.js'``)."""
    try:
        return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"web.asset: no template {name!r} in tinygrad_conv/web") from None


def json_for_script(data: Any) -> str:
    """``data`` as JSON safe inside ``<script type="application/json">``: ``<``, ``>`` and ``&``
    are escaped (so ``</script>`` in a string cannot end the element); NaN becomes null."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False, default=_default)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _default(v: Any) -> Any:
    import numpy as np

    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"web.json_for_script: cannot encode {type(v).__name__}")


def page_html(
    title: str,
    body: str,
    *,
    css: str = "",
    js: str = "",
    data: Any = None,
    data_id: str = "page-data",
) -> str:
    """One complete HTML document: ``body`` (HTML), inline ``css`` and ``js``, and ``data`` as
    JSON in ``<script type="application/json" id=data_id>`` for the script to read."""
    import html

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{css}</style>" if css else "",
        "</head><body>",
        body,
    ]
    if data is not None:
        parts.append(
            f'<script type="application/json" id="{data_id}">{json_for_script(data)}</script>'
        )
    if js:
        if "</script" in js.lower():
            raise ValueError("web.page_html: the script must not contain '</script'")
        parts.append(f"<script>{js}</script>")
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file in the same directory and
    ``os.replace``: readers see the old file or the whole new one, never half of it."""
    out = Path(path)
    if not out.parent.is_dir():
        raise FileNotFoundError(f"web.write_page: directory {str(out.parent)!r} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a page is an ordinary readable file
        os.replace(tmp, out)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return out


def write_page(path: str | os.PathLike, title: str, body: str, **kwargs: Any) -> Path:
    """Assemble a page (see :func:`page_html`) and write it atomically; returns the path."""
    return write_text_atomic(path, page_html(title, body, **kwargs))
