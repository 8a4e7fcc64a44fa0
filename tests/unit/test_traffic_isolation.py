"""gevent never enters the harness process: only the Locust process imports it."""
from __future__ import annotations

import subprocess
import sys

CHECK = (
    "import sys\n"
    "import harness.cli, harness.commands.observe, harness.traffic.observation, harness.traffic.runner\n"
    "import harness.traffic.verify, harness.checks.slo\n"
    "leaked = sorted(m for m in sys.modules if m.split('.')[0] in ('gevent', 'locust'))\n"
    "assert not leaked, leaked\n"
)


def test_harness_modules_never_import_gevent_or_locust() -> None:
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr


def test_the_observe_command_is_registered() -> None:
    from click.testing import CliRunner

    from harness.cli import main

    result = CliRunner().invoke(main, ["observe", "--help"])
    assert result.exit_code == 0
    assert "--duration" in result.output
    missing = CliRunner().invoke(main, ["observe", "some-run"])
    assert missing.exit_code == 2
    assert "give --duration" in missing.output
