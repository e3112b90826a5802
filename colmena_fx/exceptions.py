"""One root for every error a user can cause or meet, split by who is at fault.

Each class is also the builtin a caller would reach for (`ConfigError` is a
`ValueError`, `UnknownMethodError` a `KeyError`), so generic handlers keep working.
Errors from a service keep what a caller needs as attributes, as `globus_sdk.exc`
does: a Globus Compute error its HTTP status, error code, request id and address;
a data-store error the store's name and the key.
"""

from __future__ import annotations

from typing import Any


class ColmenaFXError(Exception):
    """Root of every colmena-fx error."""


class UsageError(ColmenaFXError, ValueError):
    """A call or value colmena-fx cannot accept: an argument, a size, an option."""


class ConfigError(ColmenaFXError, ValueError):
    """A site or federation file is missing, unreadable or invalid."""


class UnknownMethodError(ColmenaFXError, KeyError):
    """A task names a method that the federation does not route."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownSiteError(ColmenaFXError, KeyError):
    """A route or command names a site that the federation does not have."""

    def __str__(self) -> str:
        return str(self.args[0])


class SerializationError(ColmenaFXError, TypeError):
    """A value could not be turned into bytes (or back)."""


class PayloadTooLargeError(ColmenaFXError, ValueError):
    """A serialized value is over the transport's size limit."""


class EndpointError(ColmenaFXError, RuntimeError):
    """An endpoint could not be started, reached, or was lost."""


class FederationNotRunningError(ColmenaFXError, RuntimeError):
    """The federation was used before `start()` or after `stop()`."""


class RunDirectoryError(ColmenaFXError, OSError):
    """The run directory cannot be created or written."""


class ServiceError(ColmenaFXError, RuntimeError):
    """The Globus Compute web service refused a request, or could not be reached.

    `http_status`, `code` and `request_id` are the service's (None when it never
    answered); `url` is the address colmena-fx talked to.
    """

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        url: str | None = None,
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.code = code
        self.request_id = request_id
        self.url = url

    def about(self, context: str) -> ServiceError:
        """The same error, its message led by `context` (a site, a command)."""
        return type(self)(
            f"{context}: {self}",
            http_status=self.http_status,
            code=self.code,
            request_id=self.request_id,
            url=self.url,
        )

    def __reduce__(self) -> tuple[Any, ...]:  # keyword fields survive pickling
        return (_rebuild, (type(self), str(self), self.__dict__))


class AuthenticationError(ServiceError, PermissionError):
    """Globus credentials are missing, expired, or not accepted by the service."""


class RateLimitError(ServiceError):
    """The Globus Compute web service asked the client to slow down."""


class ServiceUnreachableError(ServiceError, ConnectionError):
    """No answer from the Globus Compute web service: address, network or outage."""


class UnknownEndpointError(ServiceError, EndpointError):
    """The service does not know the endpoint (or function), or hides it from us."""


class SubmissionTooLargeError(ServiceError, PayloadTooLargeError):
    """The service refused a submission as too large."""


class DataStoreError(ColmenaFXError, RuntimeError):
    """A data store is unreachable, or a value in it is gone.

    `store` names the store as the federation file declares it; `key` is the
    stored value's key when one is concerned.
    """

    def __init__(self, message: str, *, store: str, key: Any = None) -> None:
        super().__init__(message)
        self.store = store
        self.key = key

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), self.__dict__))


class ExecutableError(ColmenaFXError, RuntimeError):
    """An executable method's program could not be started, or exited with an error.

    `command` is the command line as run, `exit_code` its status (None when it never
    started; negative for a signal), `run_dir` the task's directory, kept with the
    program's files and output for a look.
    """

    def __init__(
        self,
        message: str,
        *,
        command: list[str],
        exit_code: int | None = None,
        run_dir: str | None = None,
    ) -> None:
        super().__init__(message)
        self.command = command
        self.exit_code = exit_code
        self.run_dir = run_dir

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), str(self), self.__dict__))


def _rebuild(cls: type[Exception], message: str, fields: dict[str, Any]) -> Exception:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(fields)
    return error
