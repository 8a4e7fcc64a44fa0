"""Checks over the run's timeline: outage intervals, data-plane gaps, lost writes, SLOs; and
the checks only a gate run has (``resources``: resource phases, project isolation).

Everything here is pure: it reads events (``samples``) and returns typed results
that cite the events proving them, so every verdict can be recomputed from
``timeline.jsonl`` alone.
"""
