"""The `meshctl` program: the console script and `python -m meshctl` both start here.

A shell completion request (`_MESHCTL_COMPLETE=complete_<shell>`, sent on every TAB) is answered
before anything else is imported, from the command tree the CLI cached (`meshctl.quickcomplete`):
importing the CLI's Typer application costs most of the 100 ms a TAB may take. Everything else goes
to `meshctl.cli`.
"""

from __future__ import annotations

import os
import sys


def run() -> int:
    from meshctl.cli import COMPLETE_VAR  # meshctl.cli imports no Typer; quickcomplete imports json and shlex

    if COMPLETE_VAR in os.environ:
        from meshctl.quickcomplete import cached_tree, complete

        try:
            tree = cached_tree()
            reply = complete(os.environ, tree) if tree is not None else None
        except Exception:  # noqa: BLE001 - the CLI answers instead, and never with a traceback
            reply = None
        if reply is not None:
            if reply.text:
                sys.stdout.write(reply.text + "\n")
            return reply.code
    from meshctl.cli import main

    return main()


if __name__ == "__main__":
    raise SystemExit(run())
