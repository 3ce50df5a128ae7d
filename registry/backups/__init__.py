"""Backups that prove themselves: `registry backup DEST` and `registry restore SRC --data DIR`
(SRC and DEST: a directory or s3://BUCKET/PREFIX).

    manifest.py   what a backup holds and the signed manifest that says so
    places.py     where a backup is kept: a directory, or s3://BUCKET/PREFIX with the same layout
    take.py       a backup: the commits since the last one as a git bundle, the files they name
    restore.py    a new data directory from a backup, refused unless every file is there and whole
"""
