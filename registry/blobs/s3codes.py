"""What an S3 error answer means, across S3-compatible stores (they spell codes differently), and
the store's refusals."""

from __future__ import annotations

from botocore.exceptions import ClientError

from ..errors import RegistryError


class Unavailable(RegistryError):
    """The bucket could not be reached or refused us: the request may succeed later."""

    status = 503


class Missing(RegistryError):
    """An object the ledger references is not in the bucket: damage, for the operator to repair."""

    status = 503


def _code(exc: ClientError) -> tuple[str, int]:
    return (str(exc.response.get("Error", {}).get("Code", "")),
            int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)))


def missing(exc: ClientError) -> bool:
    code, status = _code(exc)
    return status == 404 or code in ("404", "NoSuchKey", "NotFound")


def precondition_failed(exc: ClientError) -> bool:
    code, status = _code(exc)
    return status == 412 or code == "PreconditionFailed"


def conflicting(exc: ClientError) -> bool:
    code, status = _code(exc)
    return code == "ConditionalRequestConflict" or (status == 409 and code != "BucketAlreadyExists")
