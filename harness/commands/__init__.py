"""CLI commands, one module per concept; ``harness.cli`` registers them."""
