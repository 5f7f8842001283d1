"""The error taxonomy, mapped in one place.

Permanent errors (a 404, a payload that is not a feed, a refused address) will not fix
themselves: the item or source is quarantined and reported. Transient errors (timeouts,
5xx, 429, a dead database) are retried on the next run or by Airflow's task retries.
"""

from __future__ import annotations


class SentinelaError(Exception):
    """Base class for errors the pipeline knows how to handle."""


class PermanentError(SentinelaError):
    """Retrying will not help: quarantine it."""


class TransientError(SentinelaError):
    """Retrying later may help."""


class BlockedAddressError(PermanentError):
    """The URL resolves to a private, loopback or link-local address."""


class BodyTooLargeError(PermanentError):
    """The response body is larger than the configured cap."""


class FeedParseError(PermanentError):
    """The payload is not a usable RSS/Atom document."""


_PERMANENT_STATUS = {400, 401, 403, 404, 405, 406, 410, 411, 413, 414, 415, 451}


def error_for_status(status: int, url: str) -> SentinelaError:
    """Map an HTTP failure status to the taxonomy."""
    if status in _PERMANENT_STATUS:
        return PermanentError(f"HTTP {status} from {url}")
    return TransientError(f"HTTP {status} from {url}")


def kind_of(exc: BaseException) -> str:
    return "permanent" if isinstance(exc, PermanentError) else "transient"
