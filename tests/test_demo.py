"""``make demo`` (``python -m openmi.demo``) runs both parts — the embedded server, then ``openmi serve``
with a remote HTTPS session — and exits 0 only when every step did what it says."""

from __future__ import annotations

import re

import pytest

from openmi import demo


def test_demo_shows_the_embedded_server_and_wsman(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main() == 0
    out = capsys.readouterr().out
    part1, part2 = out.split("Part 2")
    assert "Part 1 — the MI API on an embedded CIM server" in part1
    assert "left in the repository: Ada, Barbara" in part1
    seen = "get_indication(): CIM_InstDeletion of Sample_Person.Id=2 (Grace)"
    assert seen in part1 and seen in part2  # the subscription saw the delete, embedded and over WS-Man
    assert "result=MIResult.NOT_FOUND (6)" in part1 and "CIMStatusCode = 6" in part1
    # part 2: a served repository, reached over HTTPS with the generated user and certificate
    assert re.search(r"listening on https://127\.0\.0\.1:\d+/wsman", part2)
    assert "test_connection → MI_RESULT_OK" in part2
    assert part2.count("→ MI_RESULT_OK") == 4  # the connection and three creates
    assert "left on the server: Ada, Barbara" in part2
    assert "WS-Man fault" in part2 and "result=MIResult.NOT_FOUND (6)" in part2
    assert "error_details: instance of" in part2 and "CIMStatusCode = 6" in part2
    cli = part2[part2.index("13. The same delete from the command line"):]
    assert "MI_RESULT_NOT_FOUND" in cli and "CIMStatusCode=6" in cli and "\n   6\n" in cli  # the exit status
    assert "openmi serve exited with 0" in part2
    assert out.rstrip().endswith("Demo finished.")
