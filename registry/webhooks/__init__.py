"""Webhooks: ledger commits told to other servers, in commit order, at least once.

events.py maps a commit to its event (pure); secrets.py keeps hooks' secrets in the data directory;
state.py each hook's cursor and recent attempts (the data directory, not the ledger: a delivery is
no change of state); sending.py signs and sends one event; delivery.py is the deliverer, one per
server. The verbs that add, remove and replay hooks are operations/webhooks.py.
"""
