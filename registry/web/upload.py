"""The legacy upload API, as twine, `uv publish` and `poetry publish` speak it.

The multipart body is parsed as it arrives: the `content` part streams into a staged file (hashed
while written; big chunks in a worker thread) and only the handful of form fields we check are
kept, so memory stays bounded whatever the upload's size. Whether the caller may publish to the
package the form names is decided when the file starts (twine, uv and poetry send the fields
first; a file before the form's name is refused), so a refused file is never kept, let alone read.
The metadata that matters is read from the file itself, within a budget its size allows
(dists.Budget). Small uploads are committed on the event loop, big ones in a worker thread.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

import anyio
from multipart import (
    MultipartError,
    MultipartSegment,
    PushMultipartParser,
    parse_options_header,
)
from packaging.utils import canonicalize_name
from packaging.version import Version

from .. import dists, layout, metrics, model, names, quota
from ..blobs import Digests, Staged
from ..errors import Invalid, NotFound, RegistryError, TooLarge, Unauthorized, size
from ..ledger import Locked
from ..operations import Published, publish_file, publish_target
from ..permissions import require_scope
from ..reads.usage import stored as stored_usage
from . import eventlog
from .state import WebState

KEPT_FIELDS = frozenset({
    ":action", "protocol_version", "name", "version", "filetype", "pyversion", "metadata_version",
    "md5_digest", "sha256_digest", "blake2_256_digest",
})
FIELD_LIMIT = 64 * 1024  # per kept field
FORM_SLACK = 32 * 2**20  # bytes allowed besides the file: descriptions can be long
FLUSH = 1 * 2**20  # hand the hashing thread 1 MiB at a time
INLINE = 64 * 1024  # up to this much is hashed and written on the event loop
LOCK_WAIT = 30.0  # seconds an upload waits for another writer to finish with the ledger


class Gone(RegistryError):
    status = 410


@dataclass
class UploadForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    filename: str | None = None
    files: int = 0

    def get(self, name: str) -> str:
        values = self.fields.get(name) or [""]
        if len(values) > 1:
            raise Invalid(f"{name}: Should not be a tuple.")
        return values[0].strip()


async def upload(state: WebState, ws: str, headers: Mapping[str, str], body: AsyncIterator[bytes]) -> str:
    """Take one upload to workspace ``ws``; the text to answer with, or a RegistryError saying why not.

    Called by the front door (front.py) straight from ASGI: an upload needs nothing of routing."""
    r = await state.authenticator.reader(state.registry, headers.get("authorization"))
    who = r.who
    if who.kind == "anonymous":
        raise Unauthorized("Publishing requires credentials: your email and a write-scoped API token "
                           "(or a Bitbucket Pipelines OIDC token).")
    require_scope(who, "publish")  # (before a byte of the body is read; the commit checks it again)
    if not r.sees_workspace(ws):
        raise NotFound(f"Workspace {ws!r} does not exist.")
    limit = state.registry.settings.max_upload_bytes
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + FORM_SLACK:
        raise TooLarge(f"File too large: the limit is {size(limit)}.")
    if declared and declared.isdigit():  # (a full disk: 507 before a byte of the body is read)
        state.registry.disk.check(int(declared), upload=True)
    ctype, options = parse_options_header(headers.get("content-type", ""))
    if ctype != "multipart/form-data" or not options.get("boundary"):
        raise Invalid("Uploads must be multipart/form-data (the legacy upload form twine, uv and poetry send).")

    def permit(form: UploadForm) -> None:
        """Refuse, as publish_file would, whoever may not publish to the package the form names."""
        canonical, display = names.package_name(form.get("name"))
        eventlog.uploading(canonical)  # (a refusal's line names it)
        publish_target(r.snapshot, who, ws, canonical, display)
        workspace = r.snapshot.get(layout.workspace(ws), model.Workspace)
        if workspace is not None and workspace.quota_bytes is not None:  # (a full one: before the file is read;
            # the commit checks the file's own size against the snapshot it builds on)
            quota.check(workspace, stored_usage(r.snapshot, ws), None, f"uploading {form.filename or 'a file'}")

    with state.registry.blobs.stage(limit) as staged:
        form = await _receive(body, options["boundary"], staged, limit, permit)
        filename = _check_form(form)  # (permitted when its file began: `name` comes first)

        def check_and_publish(wait: float) -> Published:
            _check_digests(form, staged.finish(sync=False))  # synced once it has passed the checks
            with staged.open() as content:
                dist = dists.inspect(content, filename)
            _check_matches_metadata(form, dist)
            staged.make_durable()  # a big file's data, before the lock (its commit needs it durable first)
            return publish_file(state.registry, who, "upload", ws, dist, staged, wait=wait)

        published = None
        if not staged.spilled and form.get("filetype") == "bdist_wheel" and not state.registry.blobs.remote:
            # A small wheel is checked and committed right here, on the event loop, unless another
            # writer holds the ledger: its ~1.5 ms are CPU work under the GIL but for one fdatasync,
            # and handing them to a thread would cost two wake-ups, more than that fsync. (Reading
            # a wheel's METADATA is bounded; an sdist may have to be decompressed far to find its
            # PKG-INFO, so sdists always go to the thread; so does every upload to a bucket: a round trip.)
            try:
                published = check_and_publish(0)
            except Locked:
                pass
        if published is None:  # one trip to a worker thread: it hashes, reads, waits for the lock, fsyncs
            published = await anyio.to_thread.run_sync(check_and_publish, LOCK_WAIT)
    metrics.published(filename, published.file.size, new=not (published.existing or published.commit is None))
    if published.existing or published.commit is None:  # (no commit: the identical file was there)
        return f"{filename} was already published with identical content; nothing changed.\n"
    created = (f"; created package {published.package.name}, linked to {ws}/{published.package.repository}"
               if published.created else "")
    return (f"Published {published.package.name} {published.version.version}: {filename} "
            f"(commit {published.commit.id[:12]}{created}).\n")


async def _receive(body: AsyncIterator[bytes], boundary: str, staged: Staged, limit: int,
                   permit: Callable[[UploadForm], None]) -> UploadForm:
    form = UploadForm()
    parser = PushMultipartParser(boundary, max_header_count=16, max_segment_count=2000)
    segment: MultipartSegment | None = None
    value = bytearray()
    pending = bytearray()
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > limit + FORM_SLACK:
                raise TooLarge(f"Request too large: the limit is {limit} bytes per file, "
                               f"plus {FORM_SLACK} for the form.")
            for event in parser.parse(chunk):
                if isinstance(event, MultipartSegment):
                    segment = event
                    if segment.name == "content":
                        form.files += 1
                        if form.files > 1:
                            raise Invalid("Upload payload has more than one 'content' file; "
                                          "upload one file per request.")
                        form.filename = segment.filename or ""
                        if len(form.fields.get("name", ())) != 1 or not form.get("name"):
                            raise Invalid("Missing required form field 'name' before the 'content' file: send the "
                                          "form's fields first (twine, uv and poetry do), so that who may publish is "
                                          "decided before the file is received.")
                        permit(form)  # before a byte of the file is kept
                        if len(form.fields.get("sha256_digest", ())) == 1:  # (sent before the file: where it goes)
                            staged.expect(form.fields["sha256_digest"][0])
                    continue
                assert segment is not None  # (the parser announces a segment before its body and its end)
                if event is not None:  # a chunk of the current segment's body
                    if segment.name == "content":
                        pending += event
                        if len(pending) >= FLUSH:
                            await anyio.to_thread.run_sync(staged.write, bytes(pending))
                            pending.clear()
                    elif segment.name in KEPT_FIELDS and segment.filename is None:
                        value += event
                        if len(value) > FIELD_LIMIT:
                            raise Invalid(f"Form field {segment.name!r} is too long.")
                else:  # end of segment
                    if segment.name == "content":
                        if len(pending) > INLINE:
                            await anyio.to_thread.run_sync(staged.write, bytes(pending))
                        elif pending:  # a small tail: hashing and writing it here beats a thread hop
                            staged.write(bytes(pending))
                        pending.clear()
                    elif segment.name in KEPT_FIELDS and segment.filename is None:
                        try:
                            form.fields.setdefault(segment.name, []).append(value.decode(segment.charset or "utf-8"))
                        except (UnicodeDecodeError, LookupError):
                            raise Invalid(f"Form field {segment.name!r} is not valid UTF-8.") from None
                    value.clear()
                    segment = None
        parser.close()
    except MultipartError as exc:
        raise Invalid(f"Malformed multipart body: {exc}.") from None
    return form


def _check_form(form: UploadForm) -> str:
    action = form.get(":action")
    if action in ("submit", "submit_pkg_info"):
        raise Gone("Project pre-registration is no longer required or supported, upload your files instead.")
    if action == "doc_upload":
        raise Gone("Uploading documentation is no longer supported.")
    if action != "file_upload":
        raise Invalid(f"Unknown or missing ':action' {action!r}: this endpoint takes ':action=file_upload' "
                      "(twine, uv publish and poetry publish send it).")
    if form.get("protocol_version") not in ("", "1"):
        raise Invalid("Unknown protocol version.")
    if form.files == 0:
        raise Invalid("Upload payload does not have a file.")
    for required in ("name", "version", "filetype"):
        if not form.get(required):
            raise Invalid(f"Missing required form field {required!r}.")
    names.package_name(form.get("name"))
    names.version(form.get("version"))  # (bounded before it is parsed: a 5,000-digit version is a 400)
    filetype = form.get("filetype")
    if filetype not in ("sdist", "bdist_wheel"):
        raise Invalid(f"Use a known file type: {filetype!r} is neither 'sdist' nor 'bdist_wheel'.")
    filename = form.filename or ""
    kind = dists.check_filename(filename)
    if kind != filetype:
        raise Invalid(f"Invalid file extension: {filename!r} is not a {filetype}.")
    pyversion = form.get("pyversion")
    if filetype == "bdist_wheel" and not pyversion:
        raise Invalid("Python version is required for binary distribution uploads.")
    if filetype == "sdist" and pyversion not in ("", "source"):
        raise Invalid("Use 'source' as Python version for an sdist.")
    return filename


def _check_digests(form: UploadForm, digests: Digests) -> None:
    supplied = {k: form.get(k) for k in ("md5_digest", "sha256_digest", "blake2_256_digest") if form.get(k)}
    if not supplied:
        raise Invalid("Include at least one message digest (sha256_digest, blake2_256_digest or md5_digest).")
    expected = {"sha256_digest": digests.sha256, "blake2_256_digest": digests.blake2b_256, "md5_digest": digests.md5}
    for name, value in supplied.items():
        if _normal_digest(name, value) != expected[name]:
            raise Invalid(f"The digest supplied does not match a digest calculated from the uploaded file ({name}).")


def _normal_digest(name: str, value: str) -> str:
    value = value.strip()
    if name == "md5_digest" and len(value) != 32:  # the form's md5 may be urlsafe base64, unpadded
        try:
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).hex()
        except (binascii.Error, ValueError):
            return value
    return value.lower()


def _check_matches_metadata(form: UploadForm, dist: dists.DistInfo) -> None:
    if canonicalize_name(form.get("name")) != dist.canonical_name:
        raise Invalid(f"The form's name {form.get('name')!r} doesn't match the file's metadata name {dist.name!r}.")
    if Version(form.get("version")) != Version(dist.version):
        raise Invalid(f"The form's version {form.get('version')!r} doesn't match the file's metadata "
                      f"version {dist.version!r}.")
