"""Talking to the Globus Compute web service: credentials, clients, and its errors.

Credentials come only from the SDK's own mechanisms: the tokens that `colmena-fx
login` (the SDK's login flow) stored where the SDK keeps them, or a client identity
from `GLOBUS_COMPUTE_CLIENT_ID` / `GLOBUS_COMPUTE_CLIENT_SECRET`. An access token in
`COLMENA_FX_GLOBUS_ACCESS_TOKEN` is used as is (short-lived runs, and the tests'
stand-in of the service).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import globus_sdk
from globus_compute_sdk import Client

from colmena_fx.config import SiteConfig
from colmena_fx.exceptions import AuthenticationError
from colmena_fx.exceptions import ConfigError
from colmena_fx.exceptions import RateLimitError
from colmena_fx.exceptions import ServiceError
from colmena_fx.exceptions import ServiceUnreachableError
from colmena_fx.exceptions import SubmissionTooLargeError
from colmena_fx.exceptions import UnknownEndpointError
from colmena_fx.limits import SUBMIT_LIMIT_BYTES
from colmena_fx.units import format_size

ACCESS_TOKEN_ENV = "COLMENA_FX_GLOBUS_ACCESS_TOKEN"

LOGIN_HINT = (
    "run `colmena-fx login`, or set GLOBUS_COMPUTE_CLIENT_ID and "
    "GLOBUS_COMPUTE_CLIENT_SECRET for a headless run"
)


def make_client(
    service_url: str | None = None, max_retries: int | None = None
) -> Client:
    """A Globus Compute `Client`, with credentials checked before any request.

    A user identity that has never logged in would otherwise start an interactive
    login in the middle of a campaign; this refuses instead, saying what to do.
    `max_retries` overrides the SDK's retries of a failed request (5, with
    exponential backoff: a quarter of a minute against a service that is down).
    """
    token = os.environ.get(ACCESS_TOKEN_ENV)
    if token:
        authorizer = globus_sdk.AccessTokenAuthorizer(token)
        client = Client(authorizer=authorizer, do_version_check=False)
        credentials: dict[str, Any] = {"authorizer": authorizer}
    else:
        app = _app()
        client = Client(app=app, do_version_check=False)
        if isinstance(app, globus_sdk.UserApp) and app.login_required():
            raise AuthenticationError(f"not logged in to Globus Compute: {LOGIN_HINT}")
        credentials = {"app": app}
    if service_url:
        _point_at(client, service_url, credentials)
    if max_retries is not None:
        client._compute_web_client.v2.retry_config.max_retries = max_retries
    try:
        client.version_check()
    except globus_sdk.GlobusAPIError as exc:
        if exc.http_status == 404:  # something answers there, but not the service
            url = service_address(client)
            raise ServiceError(
                f"{url} answers, but not as the Globus Compute service (404 for "
                f"its version route): check the site file's globus.service_url",
                http_status=404, code=exc.code, request_id=exc.request_id, url=url,
            ) from exc  # fmt: skip
        raise translate(exc, "checking the service version", client) from exc
    except globus_sdk.NetworkError as exc:
        raise translate(exc, "checking the service version", client) from exc
    except globus_sdk.GlobusError as exc:
        raise AuthenticationError(
            f"cannot authenticate: {exc}; {LOGIN_HINT}", url=service_address(client)
        ) from exc
    return client


def service_address(client: Client) -> str:
    """The web service address `client` talks to."""
    return str(client.web_service_address)


def _app() -> globus_sdk.GlobusApp:
    from globus_compute_sdk.sdk.auth.globus_app import get_globus_app

    try:
        return get_globus_app()
    except ValueError as exc:  # a secret without an id, and the like
        raise AuthenticationError(str(exc)) from exc


def _point_at(client: Client, service_url: str, credentials: dict[str, Any]) -> None:
    """Send the client's requests to `service_url` instead of the public service.

    The SDK fixes its address per named environment; this and the retry setting in
    `make_client` are the places that reach into it, and globus-compute-sdk is
    pinned in pyproject.toml for that.
    """
    from globus_compute_sdk.sdk.client import _ComputeWebClient

    client.web_service_address = service_url
    client._compute_web_client = _ComputeWebClient(  # type: ignore[no-untyped-call]
        base_url=service_url, **credentials
    )


NO_TERMINAL_HINT = (
    "logging in to Globus Compute asks for a code pasted from a browser, and there "
    "is no terminal to type it in: run `colmena-fx login` in a terminal, or set "
    "GLOBUS_COMPUTE_CLIENT_ID and GLOBUS_COMPUTE_CLIENT_SECRET for a headless run"
)


def login(force: bool = False) -> str:
    """Run the SDK's login flow; tokens land where the SDK keeps them.

    The flow reads a code from standard input: without a terminal it refuses at
    once, rather than printing a URL nobody sees and failing on end of input.
    """
    from globus_sdk.login_flows import CommandLineLoginFlowEOFError

    app = _app()
    Client(app=app, do_version_check=False)  # adds Globus Compute's scopes to the app
    if isinstance(app, globus_sdk.ClientApp):
        return "a client identity (GLOBUS_COMPUTE_CLIENT_ID) needs no login"
    if not (force or app.login_required()):
        return "already logged in"
    if sys.stdin is None or not sys.stdin.isatty():
        raise AuthenticationError(NO_TERMINAL_HINT)
    try:
        app.login(force=force)
    except CommandLineLoginFlowEOFError:  # the input ended (Ctrl-D) before a code
        raise AuthenticationError(
            "not logged in: the input ended before the authorization code was "
            "entered; run `colmena-fx login` again and paste the code it asks for"
        ) from None
    return "logged in; tokens stored by the Globus Compute SDK"


def endpoint_id_of(site: SiteConfig) -> str:
    """The site's endpoint id, or an error saying how to get one."""
    where = site.source or site.name
    if site.transport != "globus":
        raise ConfigError(f"{where}: key 'transport': site {site.name!r} is not "
                          f"reached through Globus Compute (transport: "
                          f"{site.transport})")  # fmt: skip
    if site.globus.endpoint_id is None:
        raise ConfigError(
            f"{where}: key 'globus.endpoint_id': site {site.name!r} has no endpoint "
            f"id yet: deploy its endpoint (`colmena-fx endpoint render`, then "
            f"`globus-compute-endpoint start`) and put the id it prints here"
        )
    return str(site.globus.endpoint_id)


def endpoint_status(client: Client, endpoint_id: str) -> dict[str, Any]:
    """The endpoint's status as the service reports it (`status`, `details`)."""
    try:
        return dict(client.get_endpoint_status(endpoint_id))
    except (globus_sdk.GlobusAPIError, globus_sdk.NetworkError) as exc:
        raise translate(exc, f"asking for endpoint {endpoint_id}", client) from exc


def translate(
    exc: globus_sdk.GlobusAPIError | globus_sdk.NetworkError,
    doing: str,
    client: Client | None = None,
    submit_limit: int = SUBMIT_LIMIT_BYTES,
) -> ServiceError:
    """The service's error as one of ours, with a message that says what to do.

    A network failure names the address; an answer keeps its status, code and
    request id as the error's fields. `submit_limit` is the site's request limit
    (`globus.submit_limit`), quoted when a submission was too large.
    """
    url = service_address(client) if client is not None else None
    if isinstance(exc, globus_sdk.NetworkError):
        cause = exc.underlying_exception
        return ServiceUnreachableError(
            f"no answer from the Globus Compute service at {url or 'its address'} "
            f"while {doing} ({type(exc).__name__}: {cause or exc}): check the "
            f"network, and the site file's globus.service_url if it sets one",
            url=url,
        )
    status = exc.http_status
    detail = exc.message or exc.code or str(exc)
    fields: dict[str, Any] = {"http_status": status, "code": exc.code,
                              "request_id": exc.request_id, "url": url}  # fmt: skip
    if status in (401, 403):
        return AuthenticationError(
            f"Globus Compute refused the credentials while {doing} ({status}: "
            f"{detail}); they are missing, expired, or lack consent: {LOGIN_HINT}",
            **fields,
        )
    if status == 404:
        return UnknownEndpointError(
            f"Globus Compute does not know it while {doing} ({detail}): check the "
            f"endpoint_id in the site file, and that you may use that endpoint",
            **fields,
        )
    if status == 413:
        return SubmissionTooLargeError(
            f"Globus Compute refused the submission as too large while {doing} "
            f"({detail}); the site's limit is {format_size(submit_limit)} per "
            f"request (globus.submit_limit): send large values by reference (a "
            f"store under 'data.stores' in the federation file), lower the site's "
            f"globus.batch_size, or set globus.submit_limit to the service's limit",
            **fields,
        )
    if status == 429:
        return RateLimitError(
            f"Globus Compute's rate limit was hit while {doing} ({detail}): submit "
            f"fewer, larger batches (globus.batch_size) or lower "
            f"globus.api_burst_limit",
            **fields,
        )
    return ServiceError(
        f"Globus Compute answered {status} while {doing}: {detail}", **fields
    )
