"""Backups that prove themselves: `registry backup DEST` and `registry restore SRC --data DIR`.

    manifest.py   what a backup directory holds and the signed manifest that says so
    take.py       a backup: the commits since the last one as a git bundle, the files they name
    restore.py    a new data directory from a backup, refused unless every file is there and whole
"""
