"""After publishing: the registry's own account of the version must match what this run built and sent."""

from __future__ import annotations

from .console import Console
from .credentials import Credentials, brace_uuid
from .dists import Dist
from .registry_api import RegistryRefusal, version_details, version_url


class VerificationFailed(Exception):
    pass


def publisher_text(publisher: dict | None) -> str:
    publisher = publisher or {}
    run = publisher.get("pipeline") or {}
    if publisher.get("kind") == "pipeline":
        text = f"pipeline {run.get('pipeline_uuid')} step {run.get('step_uuid')}"
        return text + (f" ({run['url']})" if run.get("url") else "")
    if publisher.get("kind") == "api-token":
        return f"API token {publisher.get('token')} of {publisher.get('by')}"
    return str(publisher.get("by") or "someone unknown")


def _by_this_run(publisher: dict | None, creds: Credentials) -> bool:
    run = (publisher or {}).get("pipeline") or {}
    return ((publisher or {}).get("kind") == "pipeline"
            and brace_uuid(run.get("pipeline_uuid")) == creds.run.pipeline_uuid
            and brace_uuid(run.get("step_uuid")) == creds.run.step_uuid)


def verify_release(console: Console, origin: str, workspace: str, name: str, version: str, dists: list[Dist],
                   creds: Credentials) -> str:
    """The version's URL, or VerificationFailed naming every file that doesn't match."""
    try:
        details = version_details(console, origin, workspace, name, version, creds.fresh().basic)
    except RegistryRefusal as exc:
        raise VerificationFailed(f"could not read the details of {name} {version} "
                                 f"({exc.status or 'no answer'} from {exc.url}): {exc.reason}") from None
    listed = {f.get("filename"): f for f in details.get("files", [])}
    problems = []
    console.info(f"Verifying {name} {version} against the registry:")
    for d in dists:
        entry = listed.get(d.filename)
        if entry is None:
            problems.append(f"{d.filename} is not on the registry")
            continue
        if entry.get("sha256") != d.sha256:
            problems.append(f"{d.filename} on the registry has sha256 {entry.get('sha256')}, this build {d.sha256}"
                            + (" (skipped as existing: the registry's file is from another build)"
                               if d.state == "conflict" else ""))
            continue
        who = publisher_text(entry.get("publisher"))
        if not d.uploaded:
            console.info(f"  ✔ {d.filename}: same sha256; it was already there (published by {who}), "
                         "so only its content is checked")
        elif creds.run is None:
            console.info(f"  ✔ {d.filename}: same sha256 (published by {who}); with token credentials only "
                         "presence and content can be checked")
        elif _by_this_run(entry.get("publisher"), creds):
            console.info(f"  ✔ {d.filename}: same sha256, published by this run ({who})")
        else:
            problems.append(f"{d.filename} is attributed to {who}, not to this run "
                            f"(pipeline {creds.run.pipeline_uuid} step {creds.run.step_uuid})")
    if problems:
        raise VerificationFailed(f"{name} {version} on the registry doesn't match this run: " + "; ".join(problems))
    return details.get("url") or version_url(origin, workspace, name, version)
