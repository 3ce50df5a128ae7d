"""Simple API pages as indexes write them: PEP 503 HTML with every data- attribute, and PEP 691
JSON; what each reads as (upstream/pages.py)."""

from __future__ import annotations

from registry.upstream.pages import entries, listed_files

HTML = b"""<!DOCTYPE html><html><head><meta name="pypi:repository-version" content="1.1"></head><body>
<a href="../../packages/demo-1.0.tar.gz#sha256=AAAA" data-requires-python="&gt;=3.8">demo-1.0.tar.gz</a>
<a href="https://files.example/demo-1.1-py3-none-any.whl#sha256=bbbb" data-yanked="broken build"
   data-dist-info-metadata="sha256=cccc">demo-1.1-py3-none-any.whl</a>
<a href="demo-1.2-py3-none-any.whl" data-yanked data-core-metadata="true">demo-1.2-py3-none-any.whl</a>
<a href="sub/dir/">not a file/</a>
</body></html>"""

JSON = b"""{"meta": {"api-version": "1.1"}, "name": "demo", "files": [
 {"filename": "demo-1.0.tar.gz", "url": "/f/demo-1.0.tar.gz", "hashes": {"sha256": "aaaa"},
  "requires-python": ">=3.8", "upload-time": "2024-01-02T03:04:05.123456Z", "size": 10,
  "core-metadata": false, "yanked": false},
 {"filename": "demo-1.1-py3-none-any.whl", "url": "https://cdn.example/x.whl", "hashes": {"sha256": "bbbb"},
  "dist-info-metadata": {"sha256": "cccc"}, "yanked": "broken build"}]}"""


def test_html_pages_read_as_their_attributes_say():
    files = listed_files(*entries("http://up.test/simple/demo/", False, HTML, "demo"))
    assert [f.filename for f in files] == ["demo-1.0.tar.gz", "demo-1.1-py3-none-any.whl", "demo-1.2-py3-none-any.whl"]
    a, b, c = files
    assert a.url == "http://up.test/packages/demo-1.0.tar.gz" and a.sha256 == "aaaa" and a.requires_python == ">=3.8"
    assert a.yanked is None and a.metadata_sha256 is None and a.upload_time is None
    assert b.yanked == "broken build" and b.metadata_sha256 == "cccc" and b.url.startswith("https://files.example/")
    assert c.yanked == "" and c.metadata_sha256 is None and c.sha256 is None


def test_json_pages_read_as_they_say():
    files = listed_files(*entries("http://up.test/simple/demo/", True, JSON, "demo"))
    a, b = files
    assert a.url == "http://up.test/f/demo-1.0.tar.gz" and a.size == 10 and a.upload_time.microsecond == 123456
    assert a.metadata_sha256 is None and a.yanked is None
    assert b.metadata_sha256 == "cccc" and b.yanked == "broken build"
