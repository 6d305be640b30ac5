"""serve's and the agent's log lines: gRPC's report of a client gone mid-stream is not an error."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from grpc._cython.cygrpc import ExecuteBatchError

from meshctl.cli.logs import configure_logging


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """configure_logging sets the root logger's handler: put back what the suite had."""
    root, meshctl = logging.getLogger(), logging.getLogger("meshctl")
    handlers, levels = root.handlers[:], (root.level, meshctl.level)
    yield
    root.handlers[:] = handlers
    root.setLevel(levels[0])
    meshctl.setLevel(levels[1])


def _report_gone_client() -> None:
    """What grpc.aio logs when a stream's client reset its connection before the status went out."""
    try:
        raise ExecuteBatchError('Failed "execute_batch"')
    except ExecuteBatchError:
        logging.getLogger("grpc._cython.cygrpc").exception("ExecuteBatchError raised in core by servicer method [/x]")


def _report_other_failure() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logging.getLogger("grpc._cython.cygrpc").exception("Unexpected [RuntimeError] raised by servicer method [/x]")


def test_a_client_gone_mid_stream_is_no_error_and_shows_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "logfmt")
    configure_logging("info", "logfmt")  # configured twice, filtered once
    _report_gone_client()
    assert capsys.readouterr().err == ""
    _report_other_failure()
    other = capsys.readouterr().err
    assert "level=error" in other and "RuntimeError" in other  # anything else still reaches the log


def test_with_debug_it_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("debug", "logfmt")
    _report_gone_client()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "level=debug" in lines[0] and "client had gone" in lines[0]
    assert "Traceback" not in lines[0]
