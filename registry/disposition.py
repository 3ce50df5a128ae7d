"""The Content-Disposition a downloaded file is sent with, whatever its name (RFC 6266).

The name as it is, exactly, in ``filename*`` (RFC 5987: UTF-8, percent-encoded by the standard
library's RFC 2231 encoder, so nothing in it can end the parameter); and in ``filename``, for
clients that read only that, the name with anything but what a distribution's name can hold
replaced by '_'. Werkzeug quotes the parameters. Names the registry accepts today have nothing to
replace (dists.check_filename); this keeps a file that an older release accepted safe to download.
"""

from __future__ import annotations

import re
from email.utils import encode_rfc2231

from werkzeug.http import dump_options_header

_UNSAFE = re.compile(r"[^A-Za-z0-9._+!-]")


def attachment(filename: str) -> str:
    """``attachment; filename=...; filename*=UTF-8''...`` for a file called ``filename``."""
    return dump_options_header("attachment", {"filename": _UNSAFE.sub("_", filename),
                                              "filename*": encode_rfc2231(filename, "UTF-8")})
