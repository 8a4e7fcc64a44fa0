"""Helpers of minicloud's data plane: hypervisor, datapath and network agent.

The workload process (``minicloud.workload``) imports only ``workload_wire``
from here, which is stdlib-only like the workload: one runs per instance.
"""
