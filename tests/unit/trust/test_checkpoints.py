"""Signed checkpoints (C2SP signed notes), the keys' URLs, and who may fetch the ledger over HTTP."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry import identity, layout, operations
from registry.errors import Forbidden
from registry.model import LedgerInfo, SigningKeys
from registry.trust import checkpoints as checkpoint
from registry.trust import keys as signing
from tests.support.world import WS


def test_the_note_format_is_c2sps():
    """The example of Go's note package (golang.org/x/mod/sumdb/note): key id and signature check out."""
    v = checkpoint.Verifier.parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    text = b"If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    sig = base64.b64decode("x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZ"
                           "SNXgKvqfqdngotpRZb6KE6RyyBwJnAM=")
    assert sig[:4] == v.id == bytes.fromhex("c74f20a3")
    v.public.verify(sig[4:], text)
    with pytest.raises(checkpoint.BadCheckpoint, match="key id"):
        checkpoint.Verifier.parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


async def test_the_checkpoint_names_the_head_and_the_commit_count(client, world):
    reg = world.reg
    key = (await client.get("/_/ledger/checkpoint-key")).text.strip()
    response = await client.get("/_/ledger/checkpoint")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    note = response.text
    point, signer = checkpoint.verify(note, [checkpoint.Verifier.parse(key)])
    info = reg.snapshot().get(layout.LEDGER_INFO, LedgerInfo)
    lines = note.splitlines()
    assert lines[0] == point.origin == "registry-ledger/" + info.registry.strip("{}")
    assert point.head == reg.ledger.head() and point.size == sum(1 for _ in reg.ledger.walk())
    assert lines[3].startswith("timestamp ") and lines[4] == "" and lines[5].startswith("\u2014 " + signer.name + " ")
    operations.create_user(reg, identity.operator(), "cli", "more@acme.test")
    moved, _ = checkpoint.verify((await client.get("/_/ledger/checkpoint")).text, [signer])
    assert moved.size == point.size + 1 and moved.head == reg.ledger.head()

    forged = note.replace(f"\n{point.size}\n", f"\n{point.size + 1}\n")
    with pytest.raises(checkpoint.BadCheckpoint, match="bad signature"):
        checkpoint.verify(forged, [signer])
    stranger = checkpoint.Verifier.parse(
        checkpoint.verifier_key(signer.name, Ed25519PrivateKey.generate().public_key()))
    with pytest.raises(checkpoint.BadCheckpoint, match="unknown key"):
        checkpoint.verify(note, [stranger])


async def test_the_allowed_signers_file_is_served_for_git(client, world):
    record = world.reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys)
    response = await client.get("/_/ledger/allowed-signers")
    assert response.status_code == 200 and response.text == signing.allowed_signers(record)
    assert response.text.startswith('registry@localhost namespaces="git",valid-after="')


async def test_only_the_operator_and_witness_tokens_may_fetch_the_ledger(client, world):
    reg, op = world.reg, identity.operator()
    refs = "/_/ledger.git/info/refs?service=git-upload-pack"
    anonymous = await client.get(refs)
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Basic")
    admin = await client.get(refs, headers=world.basic("wsadmin@acme.test"))
    assert admin.status_code == 403 and "witness token" in admin.text
    operations.create_user(reg, op, "cli", "witness@acme.test")
    world.tokens["witness@acme.test"], record = operations.create_token(reg, op, "cli", "witness@acme.test", "witness")
    assert record.scope == "witness"
    witness = world.basic("witness@acme.test")
    served = await client.get(refs, headers=witness)
    assert served.status_code == 200
    assert served.headers["content-type"] == "application/x-git-upload-pack-advertisement"
    assert reg.ledger.head().encode() in served.content
    push = await client.get("/_/ledger.git/info/refs?service=git-receive-pack", headers=witness)
    assert push.status_code == 403 and "read-only" in push.text
    assert (await client.post("/_/ledger.git/git-receive-pack", headers=witness, content=b"0000")).status_code == 403
    dumb = await client.get("/_/ledger.git/HEAD", headers=witness)
    assert dumb.status_code == 404 and "smart HTTP" in dumb.text

    # a witness token opens nothing else: it reads what anyone may, and changes nothing
    assert (await client.get(f"/{WS}/secret-pkg/", headers=witness)).status_code == 404
    assert (await client.get(f"/{WS}/public-pkg/", headers=witness)).status_code == 200
    assert (await client.get(f"/{WS}/acme-utils/", headers=witness)).text == \
        (await client.get(f"/{WS}/no-such-pkg/", headers=witness)).text.replace("no-such-pkg", "acme-utils")
    refused = await client.delete(f"/api/workspaces/{WS}/packages/pypi/public-pkg", headers=witness)
    assert refused.status_code == 403
    with pytest.raises(Forbidden):
        operations.create_token(reg, world.principal("dev@acme.test"), "api", "dev@acme.test", "witness")
