"""`meshctl diff`: what a config change does to every proxy's Envoy config.

`inputs` reads both sides (directories, files, git revisions), `compare` translates what the
change can reach and compares proxy by proxy, `report` prints the result.
"""

__all__: list[str] = []
