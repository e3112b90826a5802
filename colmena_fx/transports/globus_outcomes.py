"""How what became of a globus task turns into its `Result`.

An outcome comes either from the SDK's future (the worker's reply, the engine's
error report, a submission the service refused) or, when the transport looked the
task up, from the service's record of it (`TaskOutcome`). Either way the worker
shim's reply fills the result in, and anything else fails it with a kind that says
whether sending it again can help.
"""

from __future__ import annotations

from typing import Any

import globus_sdk
from globus_compute_sdk import Client
from globus_compute_sdk.errors import TaskExecutionFailed
from globus_compute_sdk.sdk.asynchronous.compute_future import ComputeFuture

from colmena_fx.exceptions import PayloadTooLargeError
from colmena_fx.exceptions import RateLimitError
from colmena_fx.exceptions import ServiceError
from colmena_fx.exceptions import ServiceUnreachableError
from colmena_fx.models import FailureKind
from colmena_fx.models import Result
from colmena_fx.transports import gcformat
from colmena_fx.transports.globus_lookup import TaskOutcome
from colmena_fx.transports.globus_service import translate
from colmena_fx.transports.pending import transport_failure
from colmena_fx.worker import WorkerReply


def read_future(
    task: ComputeFuture,
    result: Result,
    site: str,
    client: Client | None,
    submit_limit: int,
) -> None:
    """Fill `result` in from the SDK's completed future of the task."""
    error = task.exception()
    if error is None:
        apply_reply(task.result(), result, site)
    elif isinstance(error, TaskExecutionFailed):
        gcformat.fail_from_engine(error.remote_data, result)
    elif isinstance(error, globus_sdk.GlobusAPIError | globus_sdk.NetworkError):
        _fail_refused(error, result, site, client, submit_limit)
    else:
        message = f"Globus Compute SDK error: {type(error).__name__}: {error}"
        fail(result, FailureKind.INFRASTRUCTURE, message, site)


def read_record(outcome: TaskOutcome, result: Result, site: str) -> None:
    """Fill `result` in from the service's record of the finished task."""
    if outcome.error is not None:
        gcformat.fail_from_engine(outcome.error, result)
    elif outcome.undecodable is not None:
        message = f"cannot read the result Globus Compute holds: {outcome.undecodable}"
        fail(result, FailureKind.INFRASTRUCTURE, message, site)
    else:
        apply_reply(outcome.value, result, site)


def apply_reply(reply: Any, result: Result, site: str) -> None:
    if isinstance(reply, WorkerReply):
        gcformat.apply_reply(reply, result)
    else:
        message = f"the endpoint returned {type(reply).__name__}, not a reply"
        fail(result, FailureKind.INFRASTRUCTURE, message, site)


def fail(
    result: Result,
    kind: FailureKind,
    message: str,
    site: str,
    exception_type: str = "EndpointError",
) -> None:
    result.fail(transport_failure(kind, message, site, exception_type))


def _fail_refused(
    error: globus_sdk.GlobusAPIError | globus_sdk.NetworkError,
    result: Result,
    site: str,
    client: Client | None,
    submit_limit: int,
) -> None:
    """A submission the service refused, after the SDK's own retries.

    Too large: the user's to fix. Rate limited, a server error, no answer: the SDK
    already resent the request five times with backoff (honouring Retry-After);
    the task fails as `endpoint_lost`, so the federation's bounded, backed-off
    retries (on whichever site is usable) take over, and the transport never holds
    a task back without limit.
    """
    mapped = translate(error, f"submitting to site {site!r}", client,
                       submit_limit=submit_limit)  # fmt: skip
    message, kind = str(mapped), FailureKind.INFRASTRUCTURE
    if isinstance(mapped, PayloadTooLargeError):
        kind = FailureKind.USER
    elif _is_transient(mapped):
        kind = FailureKind.ENDPOINT_LOST
        message += " (the task was never accepted; it may be resent)"
    fail(result, kind, message, site, type(mapped).__name__)


def is_engine_report(task: ComputeFuture) -> bool:
    """Whether the SDK completed an accepted task from the endpoint's own result
    (a value or the engine's error report), rather than giving up on it."""
    error = task.exception()
    return error is None or isinstance(error, TaskExecutionFailed)


def sdk_error(task: ComputeFuture) -> str:
    if task.cancelled():
        return "cancelled"
    error = task.exception()
    return f"{type(error).__name__}: {error}"


def _is_transient(error: ServiceError) -> bool:
    """Refusals that may pass when sent again later."""
    if isinstance(error, RateLimitError | ServiceUnreachableError):
        return True
    return error.http_status is not None and error.http_status >= 500
