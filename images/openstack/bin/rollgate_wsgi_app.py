"""The WSGI application named by ROLLGATE_WSGI_MODULE, imported with an empty sys.argv.

oslo.config parses sys.argv when the OpenStack module is imported; under
gunicorn that list holds gunicorn's options, which oslo.config rejects.
"""
from __future__ import annotations

import importlib
import os
import sys

sys.argv = sys.argv[:1]
application = importlib.import_module(os.environ["ROLLGATE_WSGI_MODULE"]).application
