"""The web UI, under /-/ (urls.py says where each page is).

data.py      what the pages show: plain functions of (registry, principal, ...) -> dataclasses, each
             asking the read layer (registry/reads/) and shaping its answers; nothing here reads the
             ledger or decides who sees what
present.py   how things read to a person (publishers, channels, ledger paths, diffs); pure
session.py   signed session cookies naming their session (a ledger record), CSRF tokens, the signing key
base.py      what controllers share: the viewer, rendering, redirects, forms, the error page
pages.py, actions.py, account.py   the controllers; routes.py gathers them for app.py
templates/   Jinja2; static files are in ../static/ui (our stylesheet and script, vendored htmx)
"""
