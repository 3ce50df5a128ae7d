"""Rotating the ledger's signing keys: new keys, named in a commit the old ones sign."""

from __future__ import annotations

import dataclasses
import time

from .. import layout, model
from ..audit import Action, T
from ..datadir import Registry
from ..errors import NotFound
from ..identity import Principal
from ..ledger import Change, Snapshot
from ..model import Channel, SigningKeys
from ..trust.keys import current, rotated
from ._common import make_change, replace, require_operator


def rotate_keys(reg: Registry, who: Principal, channel: Channel) -> SigningKeys:
    """Retire the current commit and checkpoint keys and make new ones current. The new private
    keys are durable before the commit names them; the old ones are deleted once it has landed
    (whoever holds a copy of an old key can't sign anything the ledger or a witness accepts)."""
    require_operator(who, "rotate the ledger's signing keys")
    record = reg.snapshot().get(layout.SIGNING_KEYS, SigningKeys)
    while record is not None and model.now().replace(microsecond=0) <= current(record, "commit").valid_from:
        time.sleep(0.05)  # (a key valid for no whole second is one ssh-keygen refuses to read)
    provenance = who.provenance(channel)
    provenance = replace(provenance, at=provenance.at.replace(microsecond=0))  # (git's times are whole seconds)

    def build(snap: Snapshot) -> Change:
        record = snap.get(layout.SIGNING_KEYS, SigningKeys)
        if record is None:
            raise NotFound("This ledger has no signing keys yet; open it once with write access to adopt them.")
        new = rotated(reg.keys, record, provenance)
        old, fresh = current(record, "commit"), current(new, "commit")
        change = make_change(who, channel, Action.ROTATE_KEYS,
                             f"rotate signing keys: {old.fingerprint} -> {fresh.fingerprint}",
                             {layout.SIGNING_KEYS: new},
                             *((T.KEY, k.fingerprint) for k in new.keys if k.valid_until is None),
                             provenance=provenance, result=new)
        # (the old key's validity ends at this commit's time, and git checks it by that time)
        return dataclasses.replace(change, committed=provenance.at)

    record = reg.transact(build).result
    reg.keys.discard_except({(k.purpose, k.public_key) for k in record.keys if k.valid_until is None})
    return record
