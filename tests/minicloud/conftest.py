"""Shared fixtures for minicloud's own tests.

minicloud is not an installed package (the harness never imports it), so its
tests put ``images/minicloud`` on ``sys.path`` themselves.
"""
from __future__ import annotations

import sys
from pathlib import Path

MINICLOUD_ROOT = Path(__file__).resolve().parents[2] / "images" / "minicloud"

if str(MINICLOUD_ROOT) not in sys.path:
    sys.path.insert(0, str(MINICLOUD_ROOT))
