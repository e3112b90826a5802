"""One root for every error a user can cause or meet, split by who is at fault."""

from __future__ import annotations


class ColmenaFXError(Exception):
    """Root of every colmena-fx error."""


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


class EndpointLostError(EndpointError):
    """An endpoint went away while tasks were in flight."""


class WorkerLostError(ColmenaFXError, RuntimeError):
    """The worker running a task died before returning a result."""


class FederationNotRunningError(ColmenaFXError, RuntimeError):
    """The federation was used before `start()` or after `stop()`."""


class AuthenticationError(ColmenaFXError, PermissionError):
    """Globus credentials are missing, expired, or not accepted by the service."""


class ServiceError(ColmenaFXError, RuntimeError):
    """The Globus Compute web service refused a request."""


class RateLimitError(ServiceError):
    """The Globus Compute web service asked the client to slow down."""


class DataStoreError(ColmenaFXError, RuntimeError):
    """A data store is unreachable, or a value in it is gone."""
