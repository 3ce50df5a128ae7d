"""How the Simple API's pages (PEP 503/691/700/592/658/714) read: one `Row` per file, wherever the
file came from (published here, or from upstream), rendered as HTML (Jinja2 templates) or JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

import jinja2
import msgspec
from markupsafe import Markup

from .. import model
from ..model import Package
from .negotiation import API_VERSION, JSON

# --- rendering -----------------------------------------------------------------------------------

# The HTML pages (PEP 503), compiled once and autoescaped. markupsafe spells two escapes otherwise
# than html.escape, which these pages have always used: `"` is `&#34;` there, `&quot;` here, and
# `'` is `&#39;`, `&#x27;` here. Only an escaped quote can give either spelling (an `&` in a value
# is `&amp;`; the templates have neither), so the rendered page is respelled: the same bytes as ever.
_RESPELL = (("&#34;", "&quot;"), ("&#39;", "&#x27;"))


_TEMPLATES = {
    "page": (  # (``rows``: the page's lines, rendered already; an empty page has one empty line)
        "<!DOCTYPE html>\n<html>\n  <head>\n"
        '    <meta name="pypi:repository-version" content="{{ api_version }}">\n'
        "    <title>{{ title }}</title>\n  </head>\n  <body>\n"
        "    <h1>{{ title }}</h1>\n"
        "{{ rows or '\n' }}"
        "  </body>\n</html>\n"
    ),
    "project": (  # one line per file
        "{% for f in files %}"
        '    <a href="{{ f.url }}{% if f.sha256 %}#sha256={{ f.sha256 }}{% endif %}"'
        '{% if f.requires_python %} data-requires-python="{{ f.requires_python }}"{% endif %}'
        '{% if f.metadata_sha256 %}'
        ' data-dist-info-metadata="sha256={{ f.metadata_sha256 }}"'
        ' data-core-metadata="sha256={{ f.metadata_sha256 }}"{% endif %}'
        '{% if f.yanked is not none %} data-yanked="{{ f.yanked }}"{% endif %}'
        ">{{ f.filename }}</a><br>\n"
        "{% endfor %}"
    ),
    "index": (  # one line per project
        "{% for name, display in projects %}"
        '    <a href="{{ quote(name) }}/">{{ display }}</a><br>\n'
        "{% endfor %}"
    ),
}
_env = jinja2.Environment(loader=jinja2.DictLoader(_TEMPLATES), autoescape=True, keep_trailing_newline=True,
                          undefined=jinja2.StrictUndefined)
_env.globals.update(api_version=API_VERSION, quote=quote)
_PAGE, _PROJECT, _INDEX = (_env.get_template(name) for name in ("page", "project", "index"))


@dataclass(frozen=True, slots=True)
class Row:
    """One file of a project page, wherever it came from (published here, or from upstream)."""

    filename: str
    url: str  # relative to the page
    sha256: str | None
    requires_python: str | None
    metadata_sha256: str | None  # advertised (PEP 658) when set
    yanked: str | None  # None: not yanked; "": yanked without a reason
    size: int | None
    upload_time: datetime | None


def rows(all_versions: list[model.Version], base: str) -> list[Row]:
    """The files of a package's versions, as its page lists them (core metadata: wheels only)."""
    return [Row(filename=f.filename, url=f"{base}{quote(v.version)}/{quote(f.filename)}", sha256=f.sha256,
                requires_python=f.requires_python,
                metadata_sha256=f.metadata_sha256 if f.packagetype == "bdist_wheel" else None,
                yanked=v.yanked_reason if v.yanked else None, size=f.size, upload_time=f.upload_time_served)
            for v in all_versions for f in v.files]


def _html(title: str, rows: jinja2.Template, **values: object) -> bytes:
    """A page: its lines from ``rows`` (rendered with ``values``), framed; spelt as ever (``_RESPELL``)."""
    text = _PAGE.render(title=title, rows=Markup(rows.render(**values)))
    for markupsafe, ours in _RESPELL:
        text = text.replace(markupsafe, ours)
    return text.encode()


_json = msgspec.json.Encoder()


def render_project(package: Package, all_versions: list[model.Version], fmt: str, base: str) -> bytes:
    """A project page. File URLs are relative (``base`` + version/filename), so pages don't depend
    on the host or the proxy in front of us."""
    return render_rows(package.name, [v.version for v in all_versions], rows(all_versions, base), fmt)


def render_rows(name: str, versions: list[str], files: list[Row], fmt: str, tracks: list[str] | None = None) -> bytes:
    """A project page of these files. ``tracks``: the upstream project pages an owned name's page
    also serves the releases of (PEP 708), named in its JSON."""
    if fmt == JSON:
        page: dict = {"meta": {"api-version": API_VERSION}, "name": name, "versions": versions,
                      "files": [_json_file(f) for f in files]}
        if tracks:
            page["tracks"] = tracks
        return _json.encode(page)
    return _html(f"Links for {name}", _PROJECT, files=files)


def _json_file(f: Row) -> dict:
    metadata = {"sha256": f.metadata_sha256} if f.metadata_sha256 else False
    out = {
        "filename": f.filename,
        "url": f.url,
        "hashes": {"sha256": f.sha256} if f.sha256 else {},
        "requires-python": f.requires_python,
        # (PEP 714: not also under the old key `dist-info-metadata`, which pip 22.3 to 23.1, still
        # Debian 12's pip, fails on with "unhashable type: 'dict'"; the HTML keeps both names)
        "core-metadata": metadata,
        "size": f.size,
        "upload-time": f.upload_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if f.upload_time else None,
        "yanked": (f.yanked or True) if f.yanked is not None else False,
    }
    if f.size is None:  # (an upstream that gave no size: left out rather than said wrong)
        del out["size"]
    if f.upload_time is None:
        del out["upload-time"]
    return out


def render_index(projects: list[tuple[str, str]], fmt: str) -> bytes:
    """The project list: (normalised name, display name) pairs."""
    if fmt == JSON:
        return _json.encode({"meta": {"api-version": API_VERSION}, "projects": [{"name": d} for _, d in projects]})
    return _html("Simple index", _INDEX, projects=projects)
