"""Tamper evidence: the registry signs what it commits and publishes what it has, and witnesses
outside it remember.

- `sshsig.py`: OpenSSH signatures (PROTOCOL.sshsig), the wire format git's `gpg.format=ssh` reads;
- `keys.py`: the signing keys: their files in the data directory, the ledger's record of them, and
  the signer every commit goes through;
- `commit_signatures.py`: checking every commit's signature against the key of its time;
- `checkpoints.py`: the ledger's head as a C2SP signed note;
- `witness.py`: `registry witness`, an outside check that the ledger only ever grows.

The web's side of it (checkpoint, keys, the ledger over git's smart HTTP) is `web/ledger_http.py`;
rotating keys is a verb, `operations/keys.py`.
"""
