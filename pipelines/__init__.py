"""Bitbucket Pipelines identity: the step's OIDC token, verified against its workspace's issuer."""
