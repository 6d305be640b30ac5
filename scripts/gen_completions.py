"""Write shell completion scripts into completions/: `python scripts/gen_completions.py [DIR]`.

The scripts are small shims that call `meshctl` on every TAB (Typer has no static mode), which is
why `meshctl --help` has to start fast. The staleness test regenerates into a temporary directory
and compares.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHELLS = {"bash": "meshctl.bash", "zsh": "_meshctl", "fish": "meshctl.fish"}


def script(shell: str) -> str:
    """The completion script for `shell`, exactly as `meshctl completion SHELL` prints it."""
    from meshctl.cli.completion import script as completion_script

    return completion_script(shell)


def generate(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for shell, name in SHELLS.items():
        path = directory / name
        path.write_text(script(shell))
        written.append(path)
    return written


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "src"))
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "completions"
    for written in generate(target):
        print(written)
