"""The ledger itself: its signing keys, this commit as a signed checkpoint, and (for those who may)
the whole git directory."""

from __future__ import annotations

from pathlib import Path

from .. import layout, model
from ..datadir import ledger_info
from ..errors import Forbidden, NotFound, Unauthorized
from ..identity import may_fetch_ledger
from ..trust import checkpoints as checkpoint
from ..trust import keys as signing
from . import timeline
from .catalog import Catalog


class LedgerReads(Catalog):
    """The Reader's questions about the ledger as a whole. The public halves of its keys and its
    checkpoints name no workspace: anyone may have them; the ledger itself names everything, and
    is only for those who may fetch all of it."""

    def signing_keys(self) -> model.SigningKeys | None:
        """The ledger's signing-keys record (public keys and their validity) at this commit; None for
        a ledger from before signing that no writer has opened since. Whoever asks. One lookup."""
        return self.snapshot.get(layout.SIGNING_KEYS, model.SigningKeys)

    def checkpoint(self) -> str:
        """This commit as a signed checkpoint (trust/checkpoints.py), signed now by the current
        checkpoint key. Whoever asks: it names no workspace, only the head and how many commits lead
        to it. NotFound for a ledger with no keys yet; KeyMissing (503) if the private key isn't in
        the data directory. Two lookups and a commit count (cached per head; from the history index,
        and a walk of the commits it hasn't caught up to)."""
        record = self.signing_keys()
        if record is None:
            raise NotFound("This ledger has no checkpoint key yet (it predates signing, and no writer has opened it).")
        key = signing.current(record, "checkpoint")
        info = ledger_info(self.snapshot)
        point = checkpoint.Checkpoint(checkpoint.origin(info.registry), timeline.commit_count(self.reg, self.commit),
                                      self.commit, model.now().replace(microsecond=0))
        return checkpoint.sign(point, signing.note_name(key), self.reg.keys.private("checkpoint", key.public_key)[0])

    def ledger_path(self) -> Path:
        """The ledger's git directory, for those who may fetch all of it (the operator, witness and
        replica tokens); Unauthorized for a stranger, Forbidden for anyone else (saying whom to ask).
        O(1)."""
        if self.who.kind == "anonymous":
            raise Unauthorized("Authentication required: fetching the ledger takes a witness token "
                               "(`registry token create EMAIL --witness`).")
        if not may_fetch_ledger(self.who):
            raise Forbidden("Only the registry's operator, witness tokens and replica tokens may fetch the ledger: it "
                            "names every workspace's packages and people. Ask the operator for a witness token "
                            "(`registry token create EMAIL --witness`).")
        return self.reg.ledger.path
