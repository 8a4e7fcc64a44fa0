"""minicloud: a small OpenStack-compatible cloud that exists to be upgraded.

rollgate's harness never imports this package; it runs its services as
processes (``python -m minicloud SERVICE --config FILE``) and talks to them
over HTTP. See ``DESIGN.md`` beside this package for the contract.
"""
