"""The transport retry policy of :class:`~fifa.core.llm.OpenAIClient` (tenacity).

Retried: 429, 5xx, timeouts and connection errors, with exponential backoff and jitter starting at
``first`` seconds and capped at ``longest``; a ``Retry-After`` / ``Retry-After-Ms`` header of the failed
response replaces the backoff (capped too). Never retried: any other 4xx, an unreadable body.
"""

from __future__ import annotations

import email.utils
import inspect
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import tenacity
    from tenacity.wait import wait_base

log = logging.getLogger(__name__)


def backoff(first: float, longest: float) -> wait_base:
    """Exponential backoff with jitter starting at ``first`` seconds (tenacity renamed ``initial``)."""
    from tenacity import wait_exponential_jitter

    key = "multiplier" if "multiplier" in inspect.signature(wait_exponential_jitter).parameters else "initial"
    return wait_exponential_jitter(max=longest, **{key: first})


def retry_after_seconds(exc: BaseException) -> float | None:
    """Seconds asked by the ``Retry-After-Ms`` or ``Retry-After`` (seconds or HTTP date) header of a failed
    response; None without one (or without a response)."""
    headers = getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    ra = headers.get("retry-after")
    if not ra:
        return None
    try:
        return max(0.0, float(ra))
    except ValueError:
        try:
            return max(0.0, email.utils.parsedate_to_datetime(ra).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def is_retryable(exc: BaseException) -> bool:
    """A timeout, a connection error, 429 or 5xx of the ``openai`` client."""
    import openai as o

    if isinstance(exc, (o.APITimeoutError, o.APIConnectionError, o.RateLimitError, o.InternalServerError)):
        return True
    if isinstance(exc, o.APIStatusError):
        return exc.status_code == 429 or exc.status_code >= 500
    return False


def retrying(max_retries: int, first: float, longest: float) -> tenacity.Retrying:
    """A tenacity ``Retrying`` (call it with a function of no argument) of the policy above: at most
    ``max_retries`` retries, the last exception re-raised."""
    import tenacity

    wait_backoff = backoff(first, longest)

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        ra = retry_after_seconds(exc) if exc is not None else None
        return min(ra, longest) if ra is not None else wait_backoff(state)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.debug("retrying after %s (attempt %d)", type(exc).__name__, state.attempt_number)

    return tenacity.Retrying(
        retry=tenacity.retry_if_exception(is_retryable),
        wait=wait,
        stop=tenacity.stop_after_attempt(max_retries + 1),
        before_sleep=before_sleep,
        reraise=True,
    )
