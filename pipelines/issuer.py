"""A local stand-in for Bitbucket's Pipelines OIDC issuer, for development and tests.

It serves, on loopback, what Bitbucket serves per workspace:
    <base>/2.0/workspaces/<slug>/pipelines-config/identity/oidc/.well-known/openid-configuration
    <base>/2.0/workspaces/<slug>/pipelines-config/identity/oidc/keys.json
and mints RS256 tokens with the full claim set of a step. The registry trusts it only when a
workspace is configured with its issuer URL, like any other issuer.

    python -m pipelines.issuer --port 8090
    curl -s -X POST http://127.0.0.1:8090/mint -d '{"workspace": "acme", "workspaceUuid": "{...}",
         "repositoryUuid": "{...}", "branch": "main"}'
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .claims import bare_uuid, brace_uuid, default_audience

CLAIMS_SUPPORTED = ["sub", "iss", "aud", "exp", "iat", "branchName", "compliant", "deploymentEnvironmentUuid",
                    "pipelineUuid", "repositoryUuid", "stepUuid", "workspaceUuid"]


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class LocalIssuer:
    """Start with ``start()`` (or as a context manager); ``mint(...)`` makes a step's token."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, key: rsa.RSAPrivateKey | None = None) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.current = self.add_key(key)
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path.split("?", 1)[0]
                if path.endswith("/.well-known/openid-configuration"):
                    base = f"{issuer.base_url}{path.removesuffix('/.well-known/openid-configuration')}"
                    self._json(issuer.discovery(base))
                elif path.endswith("/keys.json"):
                    self._json(issuer.jwks())
                else:
                    self._json({"error": "not found"}, 404)

            def do_POST(self) -> None:  # noqa: N802
                if self.path != "/mint":
                    return self._json({"error": "not found"}, 404)
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                try:
                    token = issuer.mint(
                        workspace=body["workspace"], workspace_uuid=body["workspaceUuid"],
                        repository_uuid=body["repositoryUuid"], branch=body.get("branch", "main"),
                        environment_uuid=body.get("deploymentEnvironmentUuid"),
                        pipeline_uuid=body.get("pipelineUuid"), step_uuid=body.get("stepUuid"),
                        audience=body.get("audience"), lifetime=int(body.get("lifetime", 3600)),
                    )
                except (KeyError, ValueError) as exc:
                    return self._json({"error": f"bad request: {exc}"}, 400)
                self._json({"token": token})

            def _json(self, data: dict, status: int = 200) -> None:
                payload = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.base_url = f"http://{host}:{self.server.server_address[1]}"
        self._thread: threading.Thread | None = None

    # --- keys ------------------------------------------------------------------------------------

    def add_key(self, key: rsa.RSAPrivateKey | None = None) -> str:
        kid = uuid.uuid4().hex[:16]
        self.keys[kid] = key or _new_key()
        return kid

    def rotate(self) -> str:
        """Sign with a new key from now on; the old one stays published (as issuers do)."""
        self.current = self.add_key()
        return self.current

    def retire(self, kid: str) -> None:
        del self.keys[kid]

    def jwks(self) -> dict:
        out = []
        for kid, key in self.keys.items():
            jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": out}

    # --- the issuer ------------------------------------------------------------------------------

    def issuer_url(self, workspace: str) -> str:
        return f"{self.base_url}/2.0/workspaces/{workspace}/pipelines-config/identity/oidc"

    def discovery(self, issuer: str) -> dict:
        return {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/keys.json",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid"],
            "claims_supported": CLAIMS_SUPPORTED,
        }

    def claims(self, *, workspace: str, workspace_uuid: str, repository_uuid: str, branch: str | None = "main",
               environment_uuid: str | None = None, pipeline_uuid: str | None = None, step_uuid: str | None = None,
               audience: str | list[str] | None = None, lifetime: int = 3600, issued_at: int | None = None) -> dict:
        """A step's claims, exactly as Bitbucket shapes them (braced UUIDs, `sub` = repo[:env]:step)."""
        now = int(time.time()) if issued_at is None else issued_at
        repo = brace_uuid(repository_uuid)
        step = brace_uuid(step_uuid or str(uuid.uuid4()))
        env = brace_uuid(environment_uuid) if environment_uuid else None
        claims = {
            "iss": self.issuer_url(workspace),
            "aud": audience or default_audience(workspace_uuid),
            "sub": f"{repo}:{env}:{step}" if env else f"{repo}:{step}",
            "iat": now,
            "exp": now + lifetime,
            "workspaceUuid": brace_uuid(workspace_uuid),
            "repositoryUuid": repo,
            "pipelineUuid": brace_uuid(pipeline_uuid or str(uuid.uuid4())),
            "stepUuid": step,
        }
        if branch is not None:
            claims["branchName"] = branch
        if env:
            claims["deploymentEnvironmentUuid"] = env
        return claims

    def sign(self, claims: dict, kid: str | None = None) -> str:
        kid = kid or self.current
        return jwt.encode(claims, self.keys[kid], algorithm="RS256", headers={"kid": kid})

    def mint(self, **kwargs) -> str:
        return self.sign(self.claims(**kwargs))

    # --- serving ---------------------------------------------------------------------------------

    def start(self) -> LocalIssuer:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalIssuer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipelines.issuer", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--key-file", type=Path, help="keep the signing key here across restarts (PEM)")
    parser.add_argument("--workspace", default="WORKSPACE", help="slug shown in the example issuer URL")
    args = parser.parse_args(argv)
    key = None
    if args.key_file and args.key_file.exists():
        loaded = serialization.load_pem_private_key(args.key_file.read_bytes(), password=None)
        if not isinstance(loaded, rsa.RSAPrivateKey):  # (the tokens are RS256)
            raise SystemExit(f"{args.key_file} holds no RSA private key: give another --key-file, or none.")
        key = loaded
    issuer = LocalIssuer(args.host, args.port, key)
    if args.key_file and key is None:
        args.key_file.write_bytes(issuer.keys[issuer.current].private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    example_uuid = str(uuid.uuid4())
    print(f"Local Pipelines OIDC issuer at {issuer.base_url}")
    print(f"  issuer URL for workspace {args.workspace}: {issuer.issuer_url(args.workspace)}")
    print(f"  trust it:  registry trust {args.workspace} --issuer {issuer.issuer_url(args.workspace)}")
    print(f"  mint:      curl -s -X POST {issuer.base_url}/mint -d '{{\"workspace\": \"{args.workspace}\", "
          f"\"workspaceUuid\": \"<workspace uuid>\", \"repositoryUuid\": \"<repository uuid>\", "
          f"\"branch\": \"main\"}}'")
    print(f"  (a bare UUID such as {bare_uuid(example_uuid)} works as well as a braced one)", flush=True)
    try:
        issuer.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
