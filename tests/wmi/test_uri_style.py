"""Reaching a server that takes DMTF resource URIs (OMI) from every client layer: ``wmi.WMI(uri_style=…)``,
``mi.DestinationOptions.set_uri_style``, ``OPENMI_URI_STYLE`` for the API's default, and the hint a WMI-style
request gets when the server says the namespace does not exist."""

from __future__ import annotations

import pytest

import openmi
from openmi import mi, wmi

from .conftest import Target


@pytest.fixture(autouse=True)
def _no_style_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENMI_URI_STYLE", raising=False)  # (the defaults below are the API's own)


def _style(conn: object) -> str:
    return conn._session._obj._transport.options.uri_style  # type: ignore[attr-defined, no-any-return]


def test_wmi_connects_with_dmtf_uris(remote_target: Target) -> None:
    c = remote_target.connect(uri_style="dmtf")
    assert _style(c) == "dmtf"
    (np,) = c.Win32_Process(Name="notepad.exe")  # openmi serve takes both styles; OMI only this one
    assert np.CommandLine == "notepad.exe"
    assert _style(remote_target.connect()) == "wmi"
    with pytest.raises(wmi.x_wmi, match="'wmi' or 'dmtf'"):
        remote_target.connect(uri_style="cim")


def test_the_environment_chooses_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    assert openmi.DestinationOptions().uri_style == "wmi"
    monkeypatch.setenv("OPENMI_URI_STYLE", "DMTF")
    assert openmi.DestinationOptions().uri_style == "dmtf"
    assert openmi.DestinationOptions(uri_style="wmi").uri_style == "wmi"  # an explicit one wins
    app = mi.Application()
    opts = app.create_destination_options()
    assert opts.get_uri_style() == "dmtf"
    opts.set_uri_style("wmi")
    assert opts.get_uri_style() == "wmi"
    with pytest.raises(ValueError, match="'wmi' or 'dmtf'"):
        opts.set_uri_style("cim")
    monkeypatch.setenv("OPENMI_URI_STYLE", "nope")
    with pytest.raises(ValueError, match="OPENMI_URI_STYLE"):
        openmi.DestinationOptions()


def test_an_unknown_namespace_over_wmi_uris_hints_at_the_dmtf_style(remote_target: Target) -> None:
    c = remote_target.connect(namespace="root/nowhere")
    with pytest.raises(wmi.x_wmi) as info:
        c.Win32_Process()
    assert "uri_style='dmtf'" in str(info.value)
