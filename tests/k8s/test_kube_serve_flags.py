"""serve's flags for a cluster: what they need, refused with exit 64 before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from meshctl.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give --config-dir DIR, --kubernetes, or both"),
        (("--config-dir", ".", "--kubeconfig", "k"), "--kubeconfig and --context need --kubernetes"),
        (("--kubernetes", "--leader-lease", "no-slash"), "--leader-lease must be NAMESPACE/NAME"),
        (("--kubernetes", "--leader-lease", "ns/"), "--leader-lease must be NAMESPACE/NAME"),
        (("--kubernetes", "--shutdown-grace", "soon"), "--shutdown-grace: 'soon' is not a duration"),
    ],
)
def test_bad_cluster_flags_exit_64(args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", *args]) == 64
    assert message in capsys.readouterr().err


def test_an_unreadable_kubeconfig_says_which(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--kubernetes", "--kubeconfig", str(tmp_path / "absent")]) == 1
    assert f"kubeconfig {tmp_path / 'absent'} does not exist" in capsys.readouterr().err
