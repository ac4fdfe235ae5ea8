"""Errors raised by domain_client: one hierarchy for DDS, DMS and the domain server.

Every exception raised out of this package is a :class:`DomainClientError`. httpx exceptions
never leak: they are mapped once, in ``domain_client._http``, and chained with ``from exc``.

::

    DomainClientError                 base of everything raised by domain_client
    ├── TransportError                "network error: <detail>" (connect, read, write, protocol)
    │   └── RequestTimeoutError            "network error: timed out: <detail>"
    ├── ResponseError(status, body)   a non-2xx answer; ``str()`` is the exact protocol §2.13 text
    │   ├── BadRequestError           "bad request (400)"
    │   │   └── EmptyContentError     "bad request (400): ..." refused locally, before any request
    │   ├── UnauthorizedError         "unauthorized (401)"
    │   ├── NotFoundError             "not found (404)" (also: a download that matched no item)
    │   ├── ConflictError             "conflict (409)"
    │   ├── ServerError               "server error (<code>)" for every 5xx
    │   ├── OtherStatusError          "other storage error: unexpected status <code>"
    │   └── ChunkedUploadUnsupportedError  chunked-upload initiation got 404/405/501 (fall back)
    ├── ProtocolViolation             a 2xx body that breaks the protocol: bad JSON, truncated or
    │                                 malformed multipart, wrong content type, oversized body
    ├── DownloadTooSlowError          a download stayed below the minimum rate for a whole window
    ├── DownloadTooLargeError         an item is (or its body grew) larger than the bound allows
    ├── InvalidInputError (ValueError)  a caller's argument is refused before any request
    │   ├── NameRuleError             a name / data type breaks a naming rule (the rule is named)
    │   └── InvalidKeyError           SECP256K1_PRIVHEX is not a 32-byte hex key (never echoed)
    ├── ConfigError (ValueError)      node configuration (environment) is missing or invalid
    ├── LeaseLost                     heartbeat failed or the lease expired: stop, send no receipt
    ├── TaskCancelled(stage)          "task cancelled: <stage>": DMS or the node cancelled the task
    └── DdsError                      DDS registration / SIWE login failures
        ├── NonceError                the nonce response is missing fields (retryable)
        ├── LoginError                SIWE login failed (after retries) or gave an unusable token
        └── NotRegisteredError        the node is not registered with DDS (yet, or any more)

Display strings of :class:`ResponseError` subclasses follow protocol §2.13 exactly, because
runners match on them. Secrets (registration secret, private key, tokens, signatures) never
appear in any message raised here.
"""

from __future__ import annotations

__all__ = [
    "BadRequestError",
    "ChunkedUploadUnsupportedError",
    "ConfigError",
    "ConflictError",
    "DdsError",
    "DomainClientError",
    "DownloadTooLargeError",
    "DownloadTooSlowError",
    "EmptyContentError",
    "InvalidInputError",
    "InvalidKeyError",
    "LeaseLost",
    "LoginError",
    "NameRuleError",
    "NonceError",
    "NotFoundError",
    "NotRegisteredError",
    "OtherStatusError",
    "ProtocolViolation",
    "RequestTimeoutError",
    "ResponseError",
    "ServerError",
    "TaskCancelled",
    "TransportError",
    "UnauthorizedError",
    "error_for_status",
    "with_context",
]


class DomainClientError(Exception):
    """Base class of every error raised by domain_client."""


class TransportError(DomainClientError):
    """The request never got an HTTP answer (DNS, connect, reset, read/write failure).

    Attributes:
        request_sent: False when the request provably never left this process (connect
            failure, connect or pool timeout), so the server cannot have acted on it.
    """

    def __init__(self, detail: str, *, request_sent: bool = True) -> None:
        super().__init__(f"network error: {detail}")
        self.detail = detail
        self.request_sent = request_sent


class RequestTimeoutError(TransportError):
    """A connect, read, write or pool timeout."""

    def __init__(self, detail: str, *, request_sent: bool = True) -> None:
        super().__init__(f"timed out: {detail}", request_sent=request_sent)
        self.timeout_detail = detail


class ResponseError(DomainClientError):
    """A non-2xx HTTP answer.

    Attributes:
        status: the HTTP status code.
        body: the first bytes of the response body (kept for debugging, never in ``str()``).
        retry_after: the raw ``Retry-After`` header of the answer (seconds or HTTP-date), if any.
    """

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        *,
        detail: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.detail = detail
        self.retry_after = retry_after
        text = self.display()
        super().__init__(text if detail is None else f"{text}: {detail}")

    def display(self) -> str:
        """The protocol §2.13 display string for this status."""
        return f"other storage error: unexpected status {self.status}"


class BadRequestError(ResponseError):
    def display(self) -> str:
        return "bad request (400)"


class EmptyContentError(BadRequestError):
    """An upload of zero bytes, refused locally before any request (protocol §2.7)."""

    def __init__(self, what: str) -> None:
        super().__init__(400, detail=f"{what} is empty; empty uploads are refused")


class UnauthorizedError(ResponseError):
    def display(self) -> str:
        return "unauthorized (401)"


class NotFoundError(ResponseError):
    def display(self) -> str:
        return "not found (404)"


class ConflictError(ResponseError):
    def display(self) -> str:
        return "conflict (409)"


class ServerError(ResponseError):
    def display(self) -> str:
        return f"server error ({self.status})"


class OtherStatusError(ResponseError):
    pass


class ChunkedUploadUnsupportedError(ResponseError):
    """The chunked-upload initiation answered 404, 405 or 501: use the single-request path."""

    def display(self) -> str:
        return error_for_status(self.status).display()


def error_for_status(
    status: int, body: bytes = b"", *, detail: str | None = None, retry_after: str | None = None
) -> ResponseError:
    """The :class:`ResponseError` subclass for an HTTP status (protocol §2.13)."""
    kinds: dict[int, type[ResponseError]] = {
        400: BadRequestError,
        401: UnauthorizedError,
        404: NotFoundError,
        409: ConflictError,
    }
    kind = kinds.get(status, ServerError if 500 <= status <= 599 else OtherStatusError)
    return kind(status, body, detail=detail, retry_after=retry_after)


def with_context(exc: DomainClientError, context: str) -> DomainClientError:
    """A new error of the same kind (class, status, ``request_sent``) whose message ends with
    ``context``; a status error still starts with its protocol §2.13 display string. Errors
    other than transport, status and protocol errors are returned unchanged."""
    if isinstance(exc, ResponseError):
        detail = context if exc.detail is None else f"{exc.detail}; {context}"
        return error_for_status(exc.status, exc.body, detail=detail, retry_after=exc.retry_after)
    if isinstance(exc, RequestTimeoutError):
        return RequestTimeoutError(
            f"{exc.timeout_detail}; {context}", request_sent=exc.request_sent
        )
    if isinstance(exc, TransportError):
        return TransportError(f"{exc.detail}; {context}", request_sent=exc.request_sent)
    if isinstance(exc, ProtocolViolation):
        return ProtocolViolation(f"{exc}; {context}")
    return exc


class ProtocolViolation(DomainClientError):  # noqa: N818 (agreed public name)
    """A successful status with a body that breaks the protocol."""


class DownloadTooSlowError(DomainClientError):
    """A download's rate over its last window fell below the floor (never retried: a server
    that drips would only drip again)."""


class DownloadTooLargeError(DomainClientError):
    """An item declared or sent more bytes than the download's bound (never retried)."""


class InvalidInputError(DomainClientError, ValueError):
    """An argument refused before any request was made."""


class NameRuleError(InvalidInputError):
    """A name or data type breaks a naming rule of protocol §2.12; the message names the rule."""

    def __init__(self, field: str, value: str, rule: str) -> None:
        super().__init__(f"invalid {field} {value!r}: {rule}")
        self.field = field
        self.value = value
        self.rule = rule


class InvalidKeyError(InvalidInputError):
    """The wallet key is unusable. The key itself is never part of the message."""


class ConfigError(DomainClientError, ValueError):
    """Missing or invalid node configuration."""


class LeaseLost(DomainClientError):  # noqa: N818 (agreed public name)
    """The lease is gone (failed heartbeat, expiry, changed task): send no receipt."""


class TaskCancelled(DomainClientError):  # noqa: N818 (agreed public name)
    """The task was cancelled (by DMS or locally) while at ``stage``."""

    def __init__(self, stage: str) -> None:
        super().__init__(f"task cancelled: {stage}")
        self.stage = stage


class DdsError(DomainClientError):
    """A DDS registration or login failure."""


class NonceError(DdsError):
    """The SIWE nonce response lacks a field needed to build the message."""


class LoginError(DdsError):
    """SIWE login failed or returned an unusable token."""


class NotRegisteredError(DdsError):
    """The node has no valid DDS registration."""
