"""The cancellation and deadline token every operation carries."""

from __future__ import annotations

import logging
import time

import pytest

from openmi.cim import CancellationReason, MIResult
from openmi.cim.cancel import CancelToken, Host


def test_cancel_runs_each_callback_once_with_the_reason() -> None:
    token = CancelToken()
    seen: list[CancellationReason] = []
    token.register_cancel(seen.append)
    token.register_cancel(seen.append)
    assert not token.cancelled and token.reason is None
    token.cancel(CancellationReason.SHUTDOWN)
    token.cancel(CancellationReason.TIMEOUT)  # only the first counts
    assert token.cancelled and token.reason == CancellationReason.SHUTDOWN
    assert seen == [CancellationReason.SHUTDOWN, CancellationReason.SHUTDOWN]
    token.register_cancel(seen.append)  # too late: called at once
    assert seen[-1] == CancellationReason.SHUTDOWN and len(seen) == 3
    err = token.cancellation_error()
    assert err.result == MIResult.FAILED and "shutdown" in err.message
    with pytest.raises(type(err), match="cancelled"):
        token.check()


def test_a_failing_callback_is_logged_and_the_others_still_run(caplog: pytest.LogCaptureFixture) -> None:
    token = CancelToken()
    seen: list[str] = []

    def bad(reason: CancellationReason) -> None:
        raise RuntimeError("provider bug")

    token.register_cancel(bad)
    token.register_cancel(lambda r: seen.append("second"))
    with caplog.at_level(logging.ERROR, logger="openmi"):
        token.cancel()
    assert seen == ["second"]
    assert any("cancel callback" in r.message and r.exc_info for r in caplog.records)


def test_deadline_and_restart() -> None:
    assert CancelToken().deadline is None and CancelToken().seconds_left is None
    token = CancelToken(30.0)
    assert token.deadline is not None and 29.0 < (token.seconds_left or 0) <= 30.0
    before = token.deadline
    time.sleep(0.01)
    token.restart()
    assert token.deadline is not None and token.deadline > before
    expired = CancelToken(0.0)
    assert expired.cancelled and expired.reason == CancellationReason.TIMEOUT
    assert expired.seconds_left == 0.0
    assert expired.cancellation_error().message == "the operation timed out after 0 s"
    before = expired.deadline
    expired.restart()  # once cancelled, the deadline stays
    assert expired.deadline == before


def test_the_token_carries_its_host() -> None:
    host = Host()
    assert CancelToken(host=host).host is host
    assert host.prompt_user("go on?", 0) is True and host.write_error(None) is True  # type: ignore[arg-type]
