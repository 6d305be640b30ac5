"""Child processes that file permissions apply to, even when the tests run as root (as in CI).

Root ignores permission bits through two capabilities, CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH.
A child that drops both from its capability bounding set before it execs loses them for good:
for file access it is then an ordinary user, and a directory with mode 000 is as unreadable to it
as to meshctl run by a normal user or in a container with `capabilities: {drop: [ALL]}`. Nothing
is simulated: the process gets the kernel's own EACCES.
"""

from __future__ import annotations

import ctypes
import os

_PR_CAPBSET_DROP = 24
_CAP_DAC_OVERRIDE = 1
_CAP_DAC_READ_SEARCH = 2


def bound_by_permissions() -> None:
    """A `preexec_fn`: the child (and whatever it execs) can no longer read past permission bits."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (_CAP_DAC_OVERRIDE, _CAP_DAC_READ_SEARCH):
        if libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"prctl(PR_CAPBSET_DROP, {capability}): {os.strerror(error)}")
