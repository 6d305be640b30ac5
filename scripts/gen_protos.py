"""Compile protos/ into the package: `python scripts/gen_protos.py [OUTPUT_ROOT]`.

The output root defaults to src/; the staleness test compiles into a temporary directory and
compares, so the committed code always matches the .proto files.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def generate(output_root: Path) -> list[Path]:
    """Compile every .proto under protos/; return the files written."""
    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(PROTOS.rglob("*.proto"))
    output_root.mkdir(parents=True, exist_ok=True)
    for source in sources:
        args = [
            "protoc",
            f"-I{PROTOS}",
            f"-I{well_known}",
            f"--python_out={output_root}",
            f"--pyi_out={output_root}",
            f"--grpc_python_out={output_root}",
            str(source),
        ]
        if protoc.main(args) != 0:
            raise SystemExit(f"protoc failed on {source}")
    written = []
    for source in sources:
        stem = source.relative_to(PROTOS).with_suffix("")
        for suffix in ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py"):
            written.append(output_root / f"{stem}{suffix}")
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "src"
    for path in generate(target):
        print(path)
