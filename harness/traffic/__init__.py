"""Continuous API and data-plane traffic, recorded on the run's one timeline.

The harness process never imports Locust or gevent: ``runner`` starts Locust in
its own process with ``locustfile``; everything else here (config, plan,
discovery, probes, verification) is plain blocking Python usable from both.
"""
