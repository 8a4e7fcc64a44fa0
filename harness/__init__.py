"""rollgate: a gate test harness for rolling upgrades of OpenStack-style clouds."""

__version__ = "0.1.0"
