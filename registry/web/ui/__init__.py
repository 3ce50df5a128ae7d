"""The web UI, under /-/ (urls.py declares each page's route: its handler and its links are made from it).

data.py      what the pages show: plain functions of (registry, principal, ...) -> dataclasses, each
             asking the read layer (registry/reads/) and shaping its answers; nothing here reads the
             ledger or decides who sees what
present.py   how things read to a person (publishers, channels, ledger paths, diffs); pure
session.py   signed session cookies naming their session (a ledger record), CSRF tokens, the signing key
viewer.py    who is looking: the session a cookie names (or the visitor's), resolved once per commit
render.py    answering: a page from a template, a redirect with a flash message, the error page, the
             security headers and cookies every answer carries
forms.py     a posted form, once its CSRF token is checked; where to go after signing in
pages.py, actions.py, account.py, settings.py, storage.py   the controllers (settings.py: administration;
             storage.py: its storage and retention tab); routes.py gathers them for app.py
templates/   Jinja2; static files are in ../static/ui (our stylesheet and script, vendored htmx)
"""
