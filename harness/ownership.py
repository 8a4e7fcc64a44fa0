"""Who owns a tagged process or Docker object: its run id and its results root.

Every process rollgate starts carries ``ROLLGATE_RUN_ID`` and
``ROLLGATE_RESULTS_ROOT`` in its environment (children inherit both), and every
container, network and volume the labels ``rollgate.run`` and
``rollgate.results-root``. The results root is the resolved ``results_root()``
(``$ROLLGATE_RESULTS`` or ``./results``) of the command that created it: the
place its ``run.json`` lives. So ``rollgate down --all`` and ``rollgate status``
act on the runs of *this* results root only (another checkout, another user's
runs or a parallel CI job with its own results directory are left alone), and
``--machine-wide`` widens them to every rollgate run on the machine.

An object created by an older rollgate carries a run id but no results root:
it belongs to no root, so only ``--machine-wide`` touches it.
"""
from __future__ import annotations

from dataclasses import dataclass

from harness.runstate import results_root

RUN_ENV = "ROLLGATE_RUN_ID"
ROOT_ENV = "ROLLGATE_RESULTS_ROOT"
LABEL_ROOT = "rollgate.results-root"
#: how status and down name the owner of an object without a results-root tag
NO_ROOT = "no results root (an older rollgate)"


def within(tag: str | None, root: str | None, nested: bool = False) -> bool:
    """Whether an object tagged with results root ``tag`` belongs to ``root`` (None: to any
    root, and to none); with ``nested``, also the roots below it (``rollgate matrix`` and
    ``rollgate catalog`` give their runs ``<root>/matrix/runs`` and ``<root>/catalog/runs``)."""
    if root is None:
        return True
    if tag is None:
        return False
    return tag == root or (nested and tag.startswith(root.rstrip("/") + "/"))


def root_tag() -> str:
    """The results-root tag of what this process creates now."""
    return str(results_root())


@dataclass(frozen=True)
class Owner:
    """A tagged object's owner: (results root or None for an untagged one, run id)."""

    root: str | None
    run_id: str

    def sort_key(self) -> tuple[bool, str, str]:
        """Roots in path order, the untagged last."""
        return (self.root is None, self.root or "", self.run_id)

    @property
    def root_label(self) -> str:
        return self.root if self.root is not None else NO_ROOT
