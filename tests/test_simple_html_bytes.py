"""The Simple HTML pages (PEP 503) byte for byte: names, filenames, reasons and URLs holding
`&<>"'` and non-ASCII are escaped exactly as they always were (html.escape's spelling: `&quot;`,
`&#x27;`), whatever renders them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from registry import model
from registry.web.negotiation import HTML
from registry.web.simple import render_index, render_project

AT = datetime(2025, 1, 1, tzinfo=UTC)
MADE = model.Provenance(at=AT, by="dev@acme.test", channel="upload")


def dist(filename, kind, requires_python, i):
    return model.DistFile(filename=filename, size=10, sha256=f"{i:064x}", blake2b_256=f"{i:064x}", md5=f"{i:032x}",
                          packagetype=kind, python_version="py3" if kind == "bdist_wheel" else "source",
                          requires_python=requires_python, metadata_version="2.1",
                          metadata_sha256=f"{i + 100:064x}", uploaded=MADE)


def cases():
    package = model.Package(name="caf\u00e9-&<>\"'", display_name="Caf\u00e9 &<>\"'", workspace="acme",
                            repository="utils", created=MADE)
    versions = [
        model.Version(package=package.name, version="1.0", summary="", created=MADE, files=[
            dist("caf\u00e9_pkg-1.0-py3-none-any.whl", "bdist_wheel", ">=3.8,<4", 1),
            dist("caf\u00e9 &<>\"'.tar.gz", "sdist", None, 2),
        ]),
        model.Version(package=package.name, version="2.0rc1", summary="", created=MADE, yanked=True,
                      yanked_reason="broken <build> & \"quotes\" 'single' \u2014 \u00fc", files=[
            dist("pkg-2.0rc1.tar.gz", "sdist", ">=3.10", 3),
        ]),
        model.Version(package=package.name, version="3.0", summary="", created=MADE, yanked=True, yanked_reason="",
                      files=[dist("pkg-3.0-py3-none-any.whl", "bdist_wheel", "", 4)]),
        model.Version(package=package.name, version="4.0", summary="", created=MADE, files=[]),
    ]
    empty = model.Package(name="empty", display_name="Empty", workspace="acme", repository="utils", created=MADE)
    return {
        "project": render_project(package, versions, HTML, "../acme/caf%C3%A9/"),
        "project_base_escaped": render_project(package, versions[:1], HTML, "../a&b\"c'/"),
        "empty_project": render_project(empty, [], HTML, ""),
        "index": render_index([("caf\u00e9-x", "Caf\u00e9 &<>\"'"), ("plain", "Plain"), ("a&b", "<b>")], HTML),
        "empty_index": render_index([], HTML),
    }



EXPECTED = {
    'project': (
        b'<!DOCTYPE html>\n'
        b'<html>\n'
        b'  <head>\n'
        b'    <meta name="pypi:repository-version" content="1.1">\n'
        b'    <title>Links for caf\xc3\xa9-&amp;&lt;&gt;&quot;&#x27;</title>\n'
        b'  </head>\n'
        b'  <body>\n'
        b'    <h1>Links for caf\xc3\xa9-&amp;&lt;&gt;&quot;&#x27;</h1>\n'
        b'    <a href="../acme/caf%C3%A9/1.0/caf%C3%A9_pkg-1.0-py3-none-any.whl#sha256=0000000000000000000000000000000000000000000000000000000000000001" data-requires-python="&gt;=3.8,&lt;4" data-dist-info-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000065" data-core-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000065">caf\xc3\xa9_pkg-1.0-py3-none-any.whl</a><br>\n'
        b'    <a href="../acme/caf%C3%A9/1.0/caf%C3%A9%20%26%3C%3E%22%27.tar.gz#sha256=0000000000000000000000000000000000000000000000000000000000000002">caf\xc3\xa9 &amp;&lt;&gt;&quot;&#x27;.tar.gz</a><br>\n'
        b'    <a href="../acme/caf%C3%A9/2.0rc1/pkg-2.0rc1.tar.gz#sha256=0000000000000000000000000000000000000000000000000000000000000003" data-requires-python="&gt;=3.10" data-yanked="broken &lt;build&gt; &amp; &quot;quotes&quot; &#x27;single&#x27; \xe2\x80\x94 \xc3\xbc">pkg-2.0rc1.tar.gz</a><br>\n'
        b'    <a href="../acme/caf%C3%A9/3.0/pkg-3.0-py3-none-any.whl#sha256=0000000000000000000000000000000000000000000000000000000000000004" data-dist-info-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000068" data-core-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000068" data-yanked="">pkg-3.0-py3-none-any.whl</a><br>\n'
        b'  </body>\n'
        b'</html>\n'
    ),
    'project_base_escaped': (
        b'<!DOCTYPE html>\n'
        b'<html>\n'
        b'  <head>\n'
        b'    <meta name="pypi:repository-version" content="1.1">\n'
        b'    <title>Links for caf\xc3\xa9-&amp;&lt;&gt;&quot;&#x27;</title>\n'
        b'  </head>\n'
        b'  <body>\n'
        b'    <h1>Links for caf\xc3\xa9-&amp;&lt;&gt;&quot;&#x27;</h1>\n'
        b'    <a href="../a&amp;b&quot;c&#x27;/1.0/caf%C3%A9_pkg-1.0-py3-none-any.whl#sha256=0000000000000000000000000000000000000000000000000000000000000001" data-requires-python="&gt;=3.8,&lt;4" data-dist-info-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000065" data-core-metadata="sha256=0000000000000000000000000000000000000000000000000000000000000065">caf\xc3\xa9_pkg-1.0-py3-none-any.whl</a><br>\n'
        b'    <a href="../a&amp;b&quot;c&#x27;/1.0/caf%C3%A9%20%26%3C%3E%22%27.tar.gz#sha256=0000000000000000000000000000000000000000000000000000000000000002">caf\xc3\xa9 &amp;&lt;&gt;&quot;&#x27;.tar.gz</a><br>\n'
        b'  </body>\n'
        b'</html>\n'
    ),
    'empty_project': (
        b'<!DOCTYPE html>\n'
        b'<html>\n'
        b'  <head>\n'
        b'    <meta name="pypi:repository-version" content="1.1">\n'
        b'    <title>Links for empty</title>\n'
        b'  </head>\n'
        b'  <body>\n'
        b'    <h1>Links for empty</h1>\n'
        b'\n'
        b'  </body>\n'
        b'</html>\n'
    ),
    'index': (
        b'<!DOCTYPE html>\n'
        b'<html>\n'
        b'  <head>\n'
        b'    <meta name="pypi:repository-version" content="1.1">\n'
        b'    <title>Simple index</title>\n'
        b'  </head>\n'
        b'  <body>\n'
        b'    <h1>Simple index</h1>\n'
        b'    <a href="caf%C3%A9-x/">Caf\xc3\xa9 &amp;&lt;&gt;&quot;&#x27;</a><br>\n'
        b'    <a href="plain/">Plain</a><br>\n'
        b'    <a href="a%26b/">&lt;b&gt;</a><br>\n'
        b'  </body>\n'
        b'</html>\n'
    ),
    'empty_index': (
        b'<!DOCTYPE html>\n'
        b'<html>\n'
        b'  <head>\n'
        b'    <meta name="pypi:repository-version" content="1.1">\n'
        b'    <title>Simple index</title>\n'
        b'  </head>\n'
        b'  <body>\n'
        b'    <h1>Simple index</h1>\n'
        b'\n'
        b'  </body>\n'
        b'</html>\n'
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_simple_html_pages_are_byte_identical(name):
    assert cases()[name] == EXPECTED[name]
