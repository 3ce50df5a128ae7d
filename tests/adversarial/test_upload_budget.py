"""Uploads cost what their size allows, and a refusal for permission costs nothing of the file.

Every refusal for permission (anonymous, a read-only token, no role, a read role, another
repository's writer, a pipeline of another repository or outside its package's policy, a missing
package) comes back before the file is received (the form names the package first, as twine, uv
and poetry do; a file sent before the name is refused, unreceived, whoever sends it): shown with a
decompression bomb that inspecting would refuse in other words. The request goes straight to the
app as served (its front door), chunk by chunk, counting the chunks it asks for.

Every authorised upload of a bomb, of each archive type and each kind (bytes, members, metadata),
is a 400 naming the inspection budget, and changes nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
import zipfile

import pytest

from registry import identity, operations
from tests.support.pipelines import OTHER_REPO_UUID, as_password, step_token
from tests.support.world import WS
from tests.unit.web.test_upload import state

CHUNK = 64 * 1024
BOUNDARY = "registry-test-boundary"
META = "Metadata-Version: 2.1\nName: Acme.Utils\nVersion: 1.0\nSummary: s\n\n"


# --- files ---------------------------------------------------------------------------------------


class Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def tar_gz(members: list[tuple[str, int | bytes]]) -> bytes:
    """A .tar.gz of (name, bytes, or a count of zeros), streamed: nothing is held but the result."""
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w|") as tf:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = data if isinstance(data, int) else len(data)
            tf.addfile(info, io.BufferedReader(Zeros(data), 2**20) if isinstance(data, int) else io.BytesIO(data))
    return out.getvalue()


def a_zip(members: dict[str, int | bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in members.items():
            if isinstance(data, int):
                info = zipfile.ZipInfo(name)
                info.compress_type = zipfile.ZIP_DEFLATED
                with zf.open(info, "w") as fh:
                    for left in range(data, 0, -2**20):
                        fh.write(bytes(min(left, 2**20)))
            else:
                zf.writestr(name, data)
    return out.getvalue()


def wheel(extra: dict[str, int | bytes] | None = None, metadata: bytes = META.encode()) -> bytes:
    dist_info = "acme_utils-1.0.dist-info"
    return a_zip({**(extra or {}), "acme_utils/__init__.py": b"", f"{dist_info}/METADATA": metadata,
                  f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
                  f"{dist_info}/RECORD": b""})


def with_central_entries_repeated(data: bytes, times: int) -> bytes:
    """The zip with its first central directory entry repeated ``times`` more times (each entry 46
    bytes and its name, here one letter; nothing else of the file grows): a central directory bomb."""
    end = data.rindex(b"PK\x05\x06")
    *_, entries, size, offset, _comment = struct.unpack("<4sHHHHIIH", data[end:end + 22])
    first = data[offset:offset + 46 + sum(struct.unpack("<HHH", data[offset + 28:offset + 34]))]
    directory = data[offset:offset + size] + first * times
    record = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, entries + times, entries + times, len(directory), offset, 0)
    return data[:offset] + directory + record


PKG_INFO_LAST = "acme_utils-1.0/PKG-INFO"
ZEROS = 256 * 2**20  # decompressed; ~250 KiB as gzip, ~260 KiB as deflate: 40 times the budget

BOMBS = {  # what an authorised writer uploads: (filename, content, what the refusal names)
    "tar.gz: bytes before PKG-INFO": ("acme_utils-1.0.tar.gz",
                                      lambda: tar_gz([("acme_utils-1.0/zeros", ZEROS), (PKG_INFO_LAST, META.encode())]),
                                      "it decompresses to more than"),
    "tar.gz: members before PKG-INFO": ("acme_utils-1.0.tar.gz",
                                        lambda: tar_gz([*((f"acme_utils-1.0/{i}", b"") for i in range(5000)),
                                                        (PKG_INFO_LAST, META.encode())]),
                                        "members"),
    "tar.gz: PKG-INFO": ("acme_utils-1.0.tar.gz", lambda: tar_gz([(PKG_INFO_LAST, META.encode() + bytes(2**20))]),
                         "PKG-INFO is"),
    "zip sdist: PKG-INFO": ("acme_utils-1.0.zip", lambda: a_zip({PKG_INFO_LAST: META.encode() + bytes(2**20)}),
                            "PKG-INFO is"),
    "zip sdist: central directory": ("acme_utils-1.0.zip",
                                     lambda: with_central_entries_repeated(a_zip({"x": b"", PKG_INFO_LAST: META}),
                                                                           20_000),
                                     "members"),
    "wheel: METADATA": ("acme_utils-1.0-py3-none-any.whl", lambda: wheel(metadata=META.encode() + bytes(2**20)),
                        "METADATA is"),
    "wheel: central directory": ("acme_utils-1.0-py3-none-any.whl",
                                 lambda: with_central_entries_repeated(wheel({"x": b""}), 20_000), "members"),
}


# --- the request, chunk by chunk, to the app as served -------------------------------------------


def form(name: str, filename: str, content: bytes, name_first: bool = True) -> tuple[bytes, int]:
    """The legacy upload form (sdist or wheel) as multipart bytes, and where its file's bytes start."""
    sdist = not filename.endswith(".whl")
    fields = {":action": "file_upload", "protocol_version": "1", "filetype": "sdist" if sdist else "bdist_wheel",
              "pyversion": "source" if sdist else "py3", "version": "1.0",
              "sha256_digest": hashlib.sha256(content).hexdigest()}

    def part(field: str, value: str, file: str | None = None) -> bytes:
        disposition = f'form-data; name="{field}"' + (f'; filename="{file}"' if file else "")
        return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n{value}\r\n".encode()

    head = b"".join(part(k, v) for k, v in fields.items()) + (part("name", name) if name_first else b"")
    head += f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="content"; filename="{filename}"\r\n' \
            "Content-Type: application/octet-stream\r\n\r\n".encode()
    tail = b"\r\n" + (b"" if name_first else part("name", name)) + f"--{BOUNDARY}--\r\n".encode()
    return head + content + tail, len(head)


async def post_in_chunks(client, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes, int]:
    """POST ``body`` to /<ws>/ in CHUNK-sized pieces, straight to the app as served: (status,
    headers, body) of the answer, and how many pieces the app asked for."""
    pieces = [body[i:i + CHUNK] for i in range(0, len(body), CHUNK)]
    taken = 0

    async def receive():
        nonlocal taken
        taken += 1
        if taken > len(pieces):
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": pieces[taken - 1], "more_body": taken < len(pieces)}

    answer: dict = {"body": b""}

    async def send(message):
        if message["type"] == "http.response.start":
            answer.update(status=message["status"],  # (but for its request id, each answer's own)
                          headers=sorted(h for h in message.get("headers", []) if h[0] != b"x-request-id"))
        else:
            answer["body"] += message.get("body", b"")

    all_headers = {**headers, "content-type": f"multipart/form-data; boundary={BOUNDARY}",
                   "content-length": str(len(body))}
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": f"/{WS}/", "raw_path": f"/{WS}/".encode(), "query_string": b"", "root_path": "",
             "headers": [(k.encode(), v.encode()) for k, v in all_headers.items()], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 80), "state": {}}
    await client.served(scope, receive, send)
    return answer["status"], answer["headers"], answer["body"], min(taken, len(pieces))


# --- who may not publish -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bomb() -> bytes:
    """An sdist that inspecting refuses (no PKG-INFO, over the budget: a 400), after 256 MiB of zeros."""
    return tar_gz([("acme_utils-1.0/zeros", ZEROS)])


REFUSED = {  # caller -> (form's name, status, words)
    "anonymous": ("acme-utils", 401, "Publishing requires credentials"),
    "a read-only token": ("acme-utils", 403, "read scope"),
    # (a package the caller may not read is answered as a missing one: a 403 saying how it gets created)
    "no role": ("acme-utils", 403, "Package 'acme-utils' does not exist in workspace acme"),
    "a private package, no role": ("secret-pkg", 403, "Package 'secret-pkg' does not exist in workspace acme"),
    "a read role": ("acme-utils", 403, "needs write permission on repository acme/utils"),
    "another repository's writer": ("acme-utils", 403, "Package 'acme-utils' does not exist in workspace acme"),
    "a pipeline of another repository": ("acme-piped", 403, "Package 'acme-piped' does not exist in workspace acme"),
    "a pipeline outside the policy": ("acme-piped", 403, "branches release/* only; this run is on main"),
    "a missing package": ("no-such-pkg", 403, "registry package create acme no-such-pkg --repo REPO"),
}


def credentials(world, issuer, caller: str) -> dict[str, str]:
    if caller == "anonymous":
        return {}
    if caller.startswith("a pipeline"):
        if "policy" in caller:
            operations.set_publish_policy(world.reg, identity.operator(), "cli", WS, "acme-piped", ["release/*"], [])
            return as_password(step_token(issuer, {"ws_uuid": world.ws_uuid}))
        return as_password(step_token(issuer, {"ws_uuid": world.ws_uuid}, repository_uuid=OTHER_REPO_UUID))
    if caller == "another repository's writer":
        op = identity.operator()
        operations.create_user(world.reg, op, "cli", "elsewhere@acme.test")
        world.tokens["elsewhere@acme.test"], _ = operations.create_token(
            world.reg, op, "cli", "elsewhere@acme.test", "write")
        operations.grant(world.reg, op, "cli", WS, "elsewhere@acme.test", "write", repository="secret")
        return world.basic("elsewhere@acme.test")
    who = {"a read-only token": "dev-readonly", "no role": "outsider@acme.test", "a private package, no role":
           "outsider@acme.test", "a read role": "reader@acme.test", "a missing package": "dev@acme.test"}[caller]
    return world.basic(who)


@pytest.fixture
def callers(world, issuer, trusted):
    world.ws_uuid = trusted["ws_uuid"]
    return lambda caller: credentials(world, issuer, caller)


@pytest.mark.parametrize("caller", REFUSED)
async def test_a_refusal_for_permission_comes_before_the_file_is_received(client, world, callers, bomb, caller):
    name, status, words = REFUSED[caller]
    headers = callers(caller)
    before = state(world)
    body, file_starts = form(name, "acme_utils-1.0.tar.gz", bomb)
    got, answer_headers, text, taken = await post_in_chunks(client, headers, body)
    assert (got, words in text.decode()) == (status, True), text
    assert taken * CHUNK <= file_starts + CHUNK, f"the app took {taken * CHUNK} bytes of {len(body)} to refuse"
    # the answer is the one a harmless file gets, headers and all
    harmless, _ = form(name, "acme_utils-1.0.tar.gz", b"harmless")
    assert (await post_in_chunks(client, headers, harmless))[:3] == (got, answer_headers, text)
    assert state(world) == before


@pytest.mark.parametrize("caller", [*(c for c in REFUSED if REFUSED[c][1] != 401 and c != "a read-only token"),
                                    "the package's writer"])
async def test_a_file_sent_before_its_name_is_refused_before_it_is_received(client, world, callers, bomb, caller):
    """Who may publish is decided before the file is received: a form that sends the file first
    (no client of ours does) can't make the registry take 100 MiB to find out it was not allowed."""
    headers = world.basic("dev@acme.test") if caller == "the package's writer" else callers(caller)
    name = "acme-utils" if caller == "the package's writer" else REFUSED[caller][0]
    before = state(world)
    body, file_starts = form(name, "acme_utils-1.0.tar.gz", bomb, name_first=False)
    got, _, text, taken = await post_in_chunks(client, headers, body)
    assert got == 400 and "Missing required form field 'name' before the 'content' file" in text.decode(), text
    assert taken * CHUNK <= file_starts + CHUNK, f"the app took {taken * CHUNK} bytes of {len(body)} to refuse"
    assert state(world) == before


# --- who may publish: bombs of every kind --------------------------------------------------------


@pytest.mark.parametrize("kind", BOMBS)
async def test_an_authorised_bomb_is_refused_by_its_budget(client, world, kind):
    filename, make, what = BOMBS[kind]
    content = make()
    assert len(content) < world.reg.settings.max_upload_bytes  # (refused for what it is, not its size)
    before = state(world)
    body, _ = form("Acme.Utils", filename, content)
    status, _, text, _ = await post_in_chunks(client, world.basic("dev@acme.test"), body)
    text = text.decode()
    assert status == 400 and what in text and "over its inspection budget" in text, text
    assert "rebuild" in text  # (what to do)
    assert state(world) == before


@pytest.mark.parametrize("filename,make", [
    ("acme_utils-1.0.zip", lambda: a_zip({"acme_utils-1.0/zeros": ZEROS, PKG_INFO_LAST: META})),
    ("acme_utils-1.0-py3-none-any.whl", lambda: wheel({"acme_utils/zeros": ZEROS})),
])
async def test_a_small_zip_that_expands_far_is_taken_as_the_public_index_takes_it(client, world, filename, make):
    """Of a zip, only its metadata member is ever decompressed (within the metadata budget): a member
    of 256 MiB of zeros costs the registry nothing, and the public index refuses such expansion only
    from 64 MiB compressed. So does the registry: strict where it costs, lenient where the ecosystem is."""
    body, _ = form("Acme.Utils", filename, make())
    status, _, text, _ = await post_in_chunks(client, world.basic("dev@acme.test"), body)
    assert status == 200, text
