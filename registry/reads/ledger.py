"""The ledger itself: its signing keys, this commit as a signed checkpoint, and (for those who may)
the whole git directory."""

from __future__ import annotations

from .. import layout, model
from ..errors import Forbidden, NotFound, Unauthorized
from ..identity import may_fetch_ledger
from ..trust import checkpoints as checkpoint
from ..trust import keys as signing
from . import timeline


class LedgerReads:
    """The Reader's questions about the ledger (a mixin: ``self`` is the Reader)."""

    def signing_keys(self) -> model.SigningKeys | None:
        return self.snapshot.get(layout.SIGNING_KEYS, model.SigningKeys)

    def checkpoint(self) -> str:
        """This commit as a signed checkpoint (checkpoint.py), signed now by the current checkpoint
        key; anyone may have it: it names no workspace, only the head and how many commits lead to it."""
        record = self.signing_keys()
        if record is None:
            raise NotFound("This ledger has no checkpoint key yet (it predates signing, and no writer has opened it).")
        key = signing.current(record, "checkpoint")
        info = self.snapshot.get(layout.LEDGER_INFO, model.LedgerInfo)
        point = checkpoint.Checkpoint(checkpoint.origin(info.registry), timeline.commit_count(self.reg, self.commit),
                                      self.commit, model.now().replace(microsecond=0))
        return checkpoint.sign(point, key.note_name, self.reg.keys.private("checkpoint", key.public_key)[0])

    def ledger_path(self):
        """The ledger's git directory, for those who may fetch all of it (the operator, witnesses)."""
        if self.who.kind == "anonymous":
            raise Unauthorized("Authentication required: fetching the ledger takes a witness token "
                               "(`registry token create EMAIL --witness`).")
        if not may_fetch_ledger(self.who):
            raise Forbidden("Only the registry's operator, witness tokens and replica tokens may fetch the ledger: it "
                            "names every workspace's packages and people. Ask the operator for a witness token "
                            "(`registry token create EMAIL --witness`).")
        return self.reg.ledger.path
