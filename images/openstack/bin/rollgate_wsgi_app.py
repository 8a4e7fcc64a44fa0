"""The WSGI application named by ROLLGATE_WSGI_MODULE, imported with an empty sys.argv.

oslo.config parses sys.argv when the OpenStack module is imported; under
gunicorn that list holds gunicorn's options, which oslo.config rejects. The
list is put back after the import: with ``--preload`` (nova-api) the import
runs in gunicorn's master, which parses sys.argv again on SIGHUP and exits
("No application module specified") if it finds it emptied.
"""
from __future__ import annotations

import importlib
import os
import sys

_argv = sys.argv
sys.argv = sys.argv[:1]
try:
    application = importlib.import_module(os.environ["ROLLGATE_WSGI_MODULE"]).application
finally:
    sys.argv = _argv
