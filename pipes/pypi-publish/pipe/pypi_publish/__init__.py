"""pypi-publish: a Bitbucket Pipelines pipe that builds, publishes and verifies a Python release."""
