"""WS-Man answers written from byte templates against the full writer (lxml), in the same run: Create, a Put
answered with the instance, and a Pull page of 500 instances (per item). Both paths give the same bytes
(tests/protocol/test_wsman_fastpath.py); this prints what the templates save.

    .venv/bin/python bench/bench_templates.py [ROUNDS]
"""

from __future__ import annotations

import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from openmi.cim.instance import Element, Instance
from openmi.cim.types import MIFlag, MIType
from openmi.protocol import wsman
from openmi.protocol.wsman import response_codec

URI = "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Bench_Item"


def item(i: int) -> Instance:
    return Instance.from_elements("Bench_Item", {"id": Element("Id", i, MIType.UINT32, int(MIFlag.KEY)),
                                                 "name": Element("Name", f"item {i}", MIType.STRING)},
                                  namespace="root/cimv2")


def best(fn: Callable[[], object], number: int, rounds: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=rounds)) / number


def main() -> int:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    one, page = item(7), [item(i) for i in range(500)]
    common = {"message_id": "uuid:1", "resource_uri": URI, "namespace": "root/cimv2", "uri_style": wsman.UriStyle.WMI}
    cases: list[tuple[str, wsman.Request, wsman.Response, int, int]] = [
        ("Create", wsman.CreateRequest(instance=one, **common), wsman.CreateResponse(instance_name=one), 1, 5000),
        ("Put with the instance", wsman.PutRequest(instance=one, **common), wsman.PutResponse(instance=one), 1, 5000),
        ("Pull page, per item", wsman.PullRequest(context="uuid:ctx", max_elements=500, **common),
         wsman.PullResponse(context="uuid:ctx", items=page), 500, 20),
    ]
    print(f"WS-Man answers: byte templates vs the full writer, best of {rounds} (µs)")
    print(f"{'answer':<24}{'template':>10}{'full':>10}{'ratio':>9}")
    for label, req, resp, per, number in cases:
        fast = best(lambda: wsman.build_response(req, resp), number, rounds) / per  # noqa: B023
        response_codec._FAST = False
        try:
            full = best(lambda: wsman.build_response(req, resp), number, rounds) / per  # noqa: B023
        finally:
            response_codec._FAST = True
        print(f"{label:<24}{fast * 1e6:>10.1f}{full * 1e6:>10.1f}{full / fast:>8.1f}×")
    return 0


if __name__ == "__main__":
    sys.exit(main())
