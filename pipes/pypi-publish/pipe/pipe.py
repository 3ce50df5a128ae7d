#!/usr/bin/env python3
"""Entry point of the pypi-publish pipe (the image's ENTRYPOINT)."""

import sys

from pypi_publish.main import main

if __name__ == "__main__":
    sys.exit(main())
