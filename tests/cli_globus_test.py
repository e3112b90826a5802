"""`colmena-fx login` and `colmena-fx endpoint status` against the stand-in service."""

from __future__ import annotations

from pathlib import Path

import pytest

from colmena_fx.cli import main
from testing.gcservice.fixtures import EndpointFactory
from testing.gcservice.fixtures import write_globus_site
from testing.gcservice.service import ComputeServiceStandIn
from testing.sites import PROCESS_POOL


@pytest.mark.usefixtures("globus_credentials")
def test_endpoint_status_reports_the_service_view(
    tmp_path: Path,
    compute_service: ComputeServiceStandIn,
    start_endpoint: EndpointFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    endpoint = start_endpoint("pool", PROCESS_POOL)
    site = write_globus_site(tmp_path, "remote", compute_service, endpoint)
    assert main(["endpoint", "status", str(site)]) == 0
    out = capsys.readouterr().out
    assert f"remote: endpoint {endpoint.endpoint_id} is online" in out
    assert "engine_type: ProcessPoolEngine" in out

    endpoint.kill()
    assert main(["endpoint", "status", str(site)]) == 1
    assert "is offline" in capsys.readouterr().out


def test_endpoint_status_of_an_undeployed_site_says_what_to_do(
    capsys: pytest.CaptureFixture[str],
) -> None:
    polaris = Path(__file__).resolve().parents[1] / "endpoints" / "polaris.yaml"
    assert main(["endpoint", "status", str(polaris)]) == 2
    err = capsys.readouterr().err
    assert "globus.endpoint_id" in err and "globus-compute-endpoint start" in err


def test_login_with_a_client_identity_needs_no_browser(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GLOBUS_COMPUTE_USER_DIR", str(tmp_path))
    monkeypatch.setenv(
        "GLOBUS_COMPUTE_CLIENT_ID", "6b2c5c1e-8d1d-4f0e-9e57-2a7b1d0c3f11"
    )
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_SECRET", "not-a-real-secret")
    assert main(["login"]) == 0
    assert "needs no login" in capsys.readouterr().out


def test_login_with_a_secret_but_no_client_id_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GLOBUS_COMPUTE_USER_DIR", str(tmp_path))
    monkeypatch.delenv("GLOBUS_COMPUTE_CLIENT_ID", raising=False)
    monkeypatch.setenv("GLOBUS_COMPUTE_CLIENT_SECRET", "orphan-secret")
    assert main(["login"]) == 2
    assert "GLOBUS_COMPUTE_CLIENT_ID" in capsys.readouterr().err
