"""Hosted-API baseline: classify through any OpenAI-compatible chat-completions endpoint.

One client covers OpenAI, Anthropic's and Google's OpenAI-compatible endpoints, vLLM and
Ollama (through the official ``openai`` SDK). What it guarantees:

- **money**: every live call first reserves its worst-case cost (prompt tokens counted
  conservatively x input price + ``max_output_tokens`` x output price) under a lock, so
  concurrent calls never push the spend past ``max_dollars``; the reservation is then settled
  with the usage the API reports. A call that fits only once the calls in flight settle
  waits for them; when the next call cannot fit even then, the run stops cleanly and says
  so in ``stopped_reason``. A timed-out call, or one whose connection dropped after the
  request was sent, stays booked at its worst case (the provider may have billed it). The cap holds as far as the worst case bounds the real usage, which
  ``count_tokens`` (or the len/2 fallback) must ensure; an item that cost more is logged.
- **never paying twice**: each reply is written to a disk cache (one JSON file per request,
  atomic rename) the moment it arrives, so a rerun, or a rerun after a crash, re-reads what
  was already paid for.
- **retries are ours**: the SDK's own retries are off; 408/409/429/5xx, timeouts, connection
  errors and malformed bodies are retried with exponential backoff and jitter, then give up
  with a :class:`HostedError` that names the item.
- **the key stays secret**: the config holds only the *name* of the environment variable;
  the key is read at call time and scrubbed from every message this module produces.

``mode="estimate"`` makes no call at all: dollars come from counted tokens x price, marked
``estimated``, and accuracy is the user's ``assumed_accuracy`` (or unknown).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from evals.cost import api_price, hosted_cost_per_item
from evals.data import message_text

if TYPE_CHECKING:  # the SDK is imported only when a live run starts
    import openai

log = logging.getLogger(__name__)

# Backoff before retry k (k = 0, 1, ...) is base * 2**k * jitter(0.5..1.5), capped. Private
# so tests can shrink it; real endpoints want ~0.5 s and up.
_BACKOFF_BASE_S = 0.5
_BACKOFF_MAX_S = 30.0
# Chat formats add role markers per message and prime the reply; OpenAI documents ~3-4 tokens
# a message plus 3. Counted into the prompt so the worst case stays a bound.
_TOKENS_PER_MESSAGE = 4
_TOKENS_PER_REPLY = 3
_DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Status codes worth retrying (the same set the OpenAI SDK retries by default).
_RETRY_STATUS = frozenset({408, 409, 429})
_CACHE_FORMAT = 1
_REPLY_SHOWN_CHARS = 80


class HostedError(RuntimeError):
    """The hosted endpoint cannot be used; the message says why (never containing the key)."""


class HostedSpec(BaseModel):
    """How to call one hosted model, and what it may cost."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(
        None,
        description="OpenAI-compatible API root, e.g. http://localhost:8000/v1 (vLLM) or "
        "https://api.anthropic.com/v1/; None = OpenAI's https://api.openai.com/v1.",
    )
    model: str = Field(description="Model id as the endpoint names it, e.g. gpt-4o-mini.")
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="NAME of the environment variable holding the API key (never the key itself).",
    )
    provider: str | None = Field(
        None, description="Provider id for the price lookup (e.g. openai, anthropic, google)."
    )
    input_price_per_mtok: float | None = Field(
        None, ge=0, description="Dollars per million input tokens; overrides the price table."
    )
    output_price_per_mtok: float | None = Field(
        None, ge=0, description="Dollars per million output tokens; overrides the price table."
    )
    max_dollars: float = Field(
        5.0, ge=0, description="Hard cap on new spend in one run; never exceeded."
    )
    max_output_tokens: int = Field(
        16, ge=1, description="max_tokens per reply; a label needs only a few."
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    concurrency: int = Field(4, ge=1, description="Calls in flight at once.")
    timeout_s: float = Field(30.0, gt=0, description="Seconds before one call times out.")
    max_retries: int = Field(
        4, ge=0, description="Retries per item on 429, 5xx, timeouts, connection errors."
    )
    mode: Literal["live", "estimate"] = Field(
        "live",
        description="live: call the endpoint; estimate: no calls, cost from counted tokens.",
    )
    assumed_accuracy: float | None = Field(
        None, ge=0, le=1, description="Accuracy to assume in estimate mode (entered by the user)."
    )


@dataclass(frozen=True)
class HostedResult:
    """What one run measured. Token totals and dollars cover every answered item."""

    predictions: list[str | None]  # a label, or None (invalid reply, or not run)
    raw_replies: list[str | None]  # the reply text as received; None = not run
    invalid: int  # replies that matched no label (counted as wrong)
    answered: int  # items with a reply, live or cached
    accuracy: float | None  # correct / answered; assumed_accuracy in estimate mode
    accuracy_provenance: Literal["measured", "user"] | None
    prompt_tokens: int
    completion_tokens: int
    dollars_spent: float  # new money this run
    dollars_cached: float  # what the cached replies had cost
    cost_per_item: float | None  # average $/item over answered items (all items if estimated)
    provenance: Literal["measured", "estimated"]  # of the token counts behind the dollars
    price_source: str
    retries: int
    stopped_reason: str | None
    items_per_second: float | None  # live calls only; None when everything came from cache


@dataclass(frozen=True)
class _Reply:
    text: str
    prompt_tokens: int
    completion_tokens: int
    measured: bool  # usage came from the API, not from counting
    cached: bool
    created: float | None = None  # when a cached reply was first received (epoch seconds)


@dataclass
class _Reservation:
    """The worst-case dollars held for one call in flight."""

    worst: float
    held: bool = True


class _Budget:
    """Reserve-then-settle dollar accounting shared by the worker threads.

    A call may start only when everything committed (settled spend, possibly-billed
    timeouts), everything reserved by calls in flight and its own worst case fit under the
    cap. When it would fit once the calls in flight settle (they usually cost far less than
    their worst case), it waits for them; when it cannot fit even then, the budget is
    exhausted and no further call starts.
    """

    def __init__(self, cap: float):
        self.cap = cap
        self.spent = 0.0
        self.reserved = 0.0
        # Worst cases of timed-out calls: the provider may have billed them, so the cap counts
        # them although no usage ever arrives.
        self.maybe_spent = 0.0
        self.exhausted = False
        self._changed = threading.Condition()

    def reserve(self, worst: float) -> _Reservation | None:
        """Hold ``worst`` dollars for one call; None (and no call after it) if it cannot fit."""
        with self._changed:
            return _Reservation(worst) if self._wait_for_room(worst) else None

    def settle(self, reservation: _Reservation, actual: float) -> None:
        """Replace the held worst case by what the call really cost."""
        with self._changed:
            self._drop(reservation)
            self.spent += actual

    def release(self, reservation: _Reservation) -> None:
        """Give the held amount back (no-op once settled or released)."""
        with self._changed:
            self._drop(reservation)

    def renew_after_timeout(self, reservation: _Reservation) -> bool:
        """Book a timed-out call as possibly billed, then hold its worst case again for a retry."""
        with self._changed:
            self._drop(reservation)
            self.maybe_spent += reservation.worst
            reservation.held = self._wait_for_room(reservation.worst)
            return reservation.held

    def _wait_for_room(self, worst: float) -> bool:
        while True:
            if self.exhausted:
                return False
            committed = self.spent + self.maybe_spent
            if committed + worst > self.cap:
                self.exhausted = True
                self._changed.notify_all()
                return False
            if committed + self.reserved + worst <= self.cap:
                self.reserved += worst
                return True
            # Only calls in flight hold reservations, and each one settles or releases it.
            self._changed.wait()

    def _drop(self, reservation: _Reservation) -> None:
        if reservation.held:
            self.reserved -= reservation.worst
            reservation.held = False
            self._changed.notify_all()


class _ReplyCache:
    """One JSON file per request under ``root``: reply text and usage, never headers or keys."""

    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def get(self, key: str) -> _Reply | None:
        path = self.root / f"{key}.json"
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
            return _Reply(
                text=str(entry["reply"]),
                prompt_tokens=int(entry["prompt_tokens"]),
                completion_tokens=int(entry["completion_tokens"]),
                measured=bool(entry["measured"]),
                cached=True,
                created=entry["created"] if isinstance(entry.get("created"), int | float) else None,
            )
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            # Writes are atomic, so this is a hand-edited or foreign file: call again.
            log.warning("ignoring unreadable cache entry %s (%s)", path.name, type(exc).__name__)
            return None

    def put(self, key: str, model: str, reply: _Reply) -> None:
        entry = {
            "format": _CACHE_FORMAT,
            "model": model,
            "reply": reply.text,
            "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens,
            "measured": reply.measured,
            "created": time.time(),
        }
        # Write beside the target, then rename: a crash leaves either the old state or the
        # whole entry, never half a file.
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=f".{key[:16]}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(entry, f)
            os.replace(tmp, self.root / f"{key}.json")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class _Retryable(Exception):
    """One attempt failed in a way worth retrying; ``reason`` reads 'endpoint <reason>'."""

    def __init__(self, reason: str, *, maybe_billed: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.maybe_billed = maybe_billed  # the provider may have answered (and billed) it
        self.retry_after = retry_after


def cache_key(spec: HostedSpec, messages: list[dict[str, Any]]) -> str:
    """sha256 of everything that determines the reply: endpoint, model, messages, sampling."""
    payload = {
        "base_url": _base_url(spec),
        "model": spec.model,
        "messages": messages,
        "temperature": spec.temperature,
        "max_output_tokens": spec.max_output_tokens,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def resolve_prices(spec: HostedSpec) -> tuple[float, float, str]:
    """``(input $/MTok, output $/MTok, source)``: the config's prices, else genai-prices'."""
    if spec.input_price_per_mtok is not None and spec.output_price_per_mtok is not None:
        return spec.input_price_per_mtok, spec.output_price_per_mtok, "entered by the user"
    try:
        table_in, table_out, source = api_price(spec.model, spec.provider)
    except ValueError as exc:
        raise HostedError(
            f"{exc} (set input_price_per_mtok and output_price_per_mtok in the hosted config)"
        ) from exc
    if spec.input_price_per_mtok is None and spec.output_price_per_mtok is None:
        return table_in, table_out, source
    return (
        table_in if spec.input_price_per_mtok is None else spec.input_price_per_mtok,
        table_out if spec.output_price_per_mtok is None else spec.output_price_per_mtok,
        f"{source}, partly entered by the user",
    )


# "Category: x", "label = x", "The answer is x": a lead-in some models put before the label.
_PREFIX = re.compile(
    r"^(?:the\s+)?(?:category|label|class|intent|answer)\s*(?:is)?\s*[:=-]?\s*", re.I
)


def match_label(reply: str, labels: Sequence[str]) -> str | None:
    """The label a reply names: exact, else after normalising both; None when none matches.

    Normalising ignores case, whitespace, punctuation, underscores vs spaces vs hyphens,
    surrounding quotes and a trailing period, and a leading ``Category:``/``Label:`` prefix;
    the first line is tried alone too (models like to explain after the label).
    """
    if reply in labels:
        return reply
    by_norm: dict[str, str | None] = {}
    for label in labels:
        key = _normalise(label)
        # Two labels that normalise alike are ambiguous: only an exact reply may name them.
        by_norm[key] = None if key in by_norm else label
    lines = [line for line in reply.splitlines() if line.strip()]
    candidates = [reply] + lines[:1]
    for text in candidates:
        for variant in (text, _PREFIX.sub("", text.strip())):
            found = by_norm.get(_normalise(variant))
            if found is not None:
                return found
    return None


def _normalise(text: str) -> str:
    text = re.sub(r"[_\-]+", " ", text.lower())
    text = re.sub(r"[^\w\s]", " ", text)
    return " ".join(text.split())


class HostedClient:
    """One endpoint with its key, reply cache and dollar cap, shared by every call made through it:
    a whole baseline run, or a server's lifetime (``roitune serve --escalate-to``).

    ``call`` is safe to use from many threads at once; the cap holds across all of them."""

    def __init__(self, spec: HostedSpec, *, cache_dir: Path, count_tokens: Callable[[str], int] | None = None,
                 key: str | None = None):
        """``key``: the key itself, only for a server this process started (it takes any key); every
        other endpoint's key comes from the environment variable ``spec.api_key_env``."""
        self.spec = spec
        self.in_price, self.out_price, self.price_source = resolve_prices(spec)
        self.key = key or os.environ.get(spec.api_key_env)
        if not self.key:
            raise HostedError(
                f"environment variable {spec.api_key_env} is not set: put the API key there "
                "(any non-empty value for a local server such as vLLM or Ollama), or use "
                "mode: estimate"
            )
        self.cache = _ReplyCache(Path(cache_dir))
        self.budget = _Budget(spec.max_dollars)
        self.count_tokens = count_tokens
        self.retries = 0
        self._retries_lock = threading.Lock()
        self._client = _make_client(spec, self.key)

    def cached(self, messages: list[dict[str, Any]]) -> _Reply | None:
        """The reply already paid for, if any."""
        return self.cache.get(cache_key(self.spec, messages))

    def call(self, messages: list[dict[str, Any]], index: int = 0,
             cancelled: Callable[[], bool] | None = None) -> _Reply | None:
        """A live reply, paid within the cap and cached; None when the cap leaves no room for it
        (or ``cancelled()`` turned true while it waited for room).

        Raises HostedError when the endpoint keeps failing (after the retries) or refuses the call."""
        worst = hosted_cost_per_item(
            _prompt_tokens(messages, self.count_tokens, conservative=True),
            self.spec.max_output_tokens,
            self.in_price,
            self.out_price,
        )
        reservation = self.budget.reserve(worst)
        if reservation is None:
            return None
        try:
            if cancelled is not None and cancelled():
                return None
            reply = _call_with_retries(self._client, self.spec, messages, index, self.key, self.budget,
                                       reservation, self._count_retry)
            if reply is None:  # a timeout the cap leaves no room to retry
                return None
            if not reply.measured:
                reply = _Reply(
                    reply.text,
                    _prompt_tokens(messages, self.count_tokens, conservative=False),
                    _text_tokens(reply.text, self.count_tokens),
                    measured=False,
                    cached=False,
                )
            actual = hosted_cost_per_item(reply.prompt_tokens, reply.completion_tokens, self.in_price, self.out_price)
            self.budget.settle(reservation, actual)
            self.cache.put(cache_key(self.spec, messages), self.spec.model, reply)
            if actual > worst:
                log.warning(
                    "item %d cost $%.6f, more than its reserved worst case $%.6f: the token "
                    "count undercounts this endpoint's tokenizer",
                    index,
                    actual,
                    worst,
                )
            return reply
        finally:
            # Always give back what is still held: threads waiting for budget depend on it.
            self.budget.release(reservation)

    def dollars(self, reply: _Reply) -> float:
        """What a reply cost (usage x price)."""
        return hosted_cost_per_item(reply.prompt_tokens, reply.completion_tokens, self.in_price, self.out_price)

    def close(self) -> None:
        self._client.close()

    def _count_retry(self) -> None:
        with self._retries_lock:
            self.retries += 1


def run_hosted(
    spec: HostedSpec,
    conversations: list[list[dict[str, Any]]],
    labels: list[str],
    *,
    cache_dir: Path,
    count_tokens: Callable[[str], int] | None = None,
    progress: Callable[[int], None] | None = None,
    label_set: Sequence[str] | None = None,
) -> HostedResult:
    """Classify each conversation through the hosted model and measure quality and dollars.

    ``conversations[i]`` is the list of chat messages (system + user) sent for item ``i``;
    ``labels[i]`` its gold label. ``label_set`` is the set of valid answers (default: the
    distinct gold labels). ``count_tokens`` counts tokens for the dollar cap's worst case and
    for estimates (fallback: len/2 for the cap, len/4 for estimates). ``progress`` is called
    with the number of items answered so far.
    """
    if len(conversations) != len(labels):
        raise ValueError(f"{len(conversations)} conversations but {len(labels)} labels")
    valid_labels = list(label_set) if label_set is not None else sorted(set(labels))
    if spec.mode == "estimate":
        in_price, out_price, price_source = resolve_prices(spec)
        return _estimate(
            spec, conversations, labels, count_tokens, in_price, out_price, price_source
        )

    client = HostedClient(spec, cache_dir=cache_dir, count_tokens=count_tokens)
    n = len(conversations)
    replies: list[_Reply | None] = [client.cached(messages) for messages in conversations]
    pending = [i for i, reply in enumerate(replies) if reply is None]
    done = n - len(pending)
    done_lock = threading.Lock()
    if progress is not None and done:
        progress(done)

    abort = threading.Event()
    errors: dict[int, BaseException] = {}

    def work(i: int) -> None:
        nonlocal done
        if abort.is_set():  # another item failed (this one may have waited for budget meanwhile)
            return
        try:
            reply = client.call(conversations[i], i, cancelled=abort.is_set)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            errors[i] = exc
            abort.set()
            return
        if reply is None:  # the cap
            return
        replies[i] = reply
        with done_lock:
            done += 1
            if progress is not None:
                progress(done)

    started = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=spec.concurrency, thread_name_prefix="hosted") as pool:
            # Submitted in item order, so with a cap the first items are the ones answered.
            list(pool.map(work, pending))
    finally:
        client.close()
    live_seconds = time.perf_counter() - started
    if errors:
        raise errors[min(errors)]

    return _summarise(
        spec,
        replies,
        labels,
        valid_labels,
        client.in_price,
        client.out_price,
        client.price_source,
        retries=client.retries,
        exhausted=client.budget.exhausted,
        live_seconds=live_seconds if pending else None,
    )


def _make_client(spec: HostedSpec, key: str) -> openai.OpenAI:
    import openai

    # max_retries=0: the retry policy (and its count) is ours, see _call_with_retries.
    return openai.OpenAI(
        api_key=key, base_url=_base_url(spec), timeout=spec.timeout_s, max_retries=0
    )


def endpoint_url(spec: HostedSpec) -> str:
    """The API root the calls go to (OpenAI's when ``base_url`` is not set)."""
    return _base_url(spec)


def _base_url(spec: HostedSpec) -> str:
    # Explicit, so OPENAI_BASE_URL in the environment cannot silently redirect paid calls.
    return (spec.base_url or _DEFAULT_BASE_URL).rstrip("/")


def _call_with_retries(
    client: openai.OpenAI,
    spec: HostedSpec,
    messages: list[dict[str, Any]],
    index: int,
    key: str,
    budget: _Budget,
    reservation: _Reservation,
    on_retry: Callable[[], None],
) -> _Reply | None:
    """One item's reply, retrying transient failures; None if the budget ran out meanwhile."""
    attempt = 0
    while True:
        try:
            return _call_once(client, spec, messages, index, key)
        except _Retryable as exc:
            if attempt == spec.max_retries:
                raise HostedError(
                    f"endpoint {exc.reason} after {spec.max_retries} retries for item {index}"
                ) from None
            if exc.maybe_billed and not budget.renew_after_timeout(reservation):
                log.warning(
                    "item %d: %s and the dollar cap leaves no room to retry it", index, exc.reason
                )
                return None
            delay = min(_BACKOFF_MAX_S, _BACKOFF_BASE_S * 2**attempt * random.uniform(0.5, 1.5))
            if exc.retry_after is not None:
                delay = max(delay, min(exc.retry_after, _BACKOFF_MAX_S))
            attempt += 1
            on_retry()
            log.info(
                "item %d: endpoint %s; retry %d of %d in %.2f s",
                index,
                exc.reason,
                attempt,
                spec.max_retries,
                delay,
            )
            time.sleep(delay)


def _call_once(
    client: openai.OpenAI, spec: HostedSpec, messages: list[dict[str, Any]], index: int, key: str
) -> _Reply:
    import openai

    # Failures are translated here but raised after the except blocks, so no SDK exception
    # (whose text may quote the response body) rides along as __context__.
    failure: Exception | None = None
    response: Any = None
    try:
        response = client.chat.completions.create(
            model=spec.model,
            messages=messages,  # type: ignore[arg-type]
            temperature=spec.temperature,
            max_tokens=spec.max_output_tokens,
        )
    except openai.APITimeoutError:
        failure = _Retryable(f"timed out ({spec.timeout_s:g} s)", maybe_billed=True)
    except openai.APIConnectionError as exc:
        # Refused before the request left: nothing to bill. Dropped after it was sent: the
        # provider may have answered and billed it, like a timeout.
        failure = _Retryable("connection failed", maybe_billed=not _never_sent(exc.__cause__))
    except openai.APIStatusError as exc:
        status = exc.status_code
        if status in _RETRY_STATUS or status >= 500:
            retry_after = _retry_after(exc.response.headers)
            failure = _Retryable(f"returned {status}", retry_after=retry_after)
        else:
            # Not transient (bad request, wrong key, unknown model): retrying would not help.
            failure = HostedError(
                f"endpoint returned {status} for item {index}: {_scrub(exc.message, key)}"
            )
    except ValueError:  # a JSON content type with a body that is not JSON
        failure = _Retryable("returned a malformed body (not JSON)")
    if failure is not None:
        raise failure

    # The SDK builds the response without validating it, so check its shape here.
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise _Retryable("returned a malformed body (no choices)")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    if message is None or not isinstance(content, str | None):
        raise _Retryable("returned a malformed body (no message)")
    text = _scrub(content or "", key)  # None content (a refusal) is a reply that names no label
    usage = getattr(response, "usage", None)
    prompt = getattr(usage, "prompt_tokens", None)
    completion = getattr(usage, "completion_tokens", None)
    if isinstance(prompt, int) and isinstance(completion, int):
        return _Reply(text, prompt, completion, measured=True, cached=False)
    return _Reply(text, 0, 0, measured=False, cached=False)  # counted by the caller


def _never_sent(error: BaseException | None) -> bool:
    """The transport could not connect at all (httpx's ConnectError): the request never left."""
    return any(cls.__name__ == "ConnectError" for cls in type(error).__mro__) if error else False


def _retry_after(headers: Any) -> float | None:
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


def _scrub(text: str, key: str) -> str:
    # A proxy or a hostile server may echo the Authorization header back.
    return text.replace(key, "***") if key else text


def _text_tokens(text: str, count_tokens: Callable[[str], int] | None) -> int:
    # ~4 characters a token is the usual best guess for English with BPE vocabularies.
    return count_tokens(text) if count_tokens is not None else math.ceil(len(text) / 4)


def _prompt_tokens(
    messages: list[dict[str, Any]],
    count_tokens: Callable[[str], int] | None,
    *,
    conservative: bool,
) -> int:
    """Prompt tokens of one request: an upper bound for the cap, else a best guess."""
    texts = [message_text(m.get("content")) for m in messages]
    if count_tokens is not None:
        body = sum(count_tokens(t) for t in texts)
    else:
        # Without a tokenizer the cap assumes 2 characters a token, twice the usual density.
        per_token = 2 if conservative else 4
        body = sum(math.ceil(len(t) / per_token) for t in texts)
    return body + _TOKENS_PER_MESSAGE * len(messages) + _TOKENS_PER_REPLY


def _estimate(
    spec: HostedSpec,
    conversations: list[list[dict[str, Any]]],
    labels: list[str],
    count_tokens: Callable[[str], int] | None,
    in_price: float,
    out_price: float,
    price_source: str,
) -> HostedResult:
    """No calls: tokens counted (a correct reply is its gold label), priced, marked estimated."""
    n = len(conversations)
    prompt = sum(_prompt_tokens(m, count_tokens, conservative=False) for m in conversations)
    completion = sum(_text_tokens(label, count_tokens) for label in labels)
    per_item = hosted_cost_per_item(prompt / n, completion / n, in_price, out_price) if n else None
    return HostedResult(
        predictions=[None] * n,
        raw_replies=[None] * n,
        invalid=0,
        answered=0,
        accuracy=spec.assumed_accuracy,
        accuracy_provenance="user" if spec.assumed_accuracy is not None else None,
        prompt_tokens=prompt,
        completion_tokens=completion,
        dollars_spent=0.0,
        dollars_cached=0.0,
        cost_per_item=per_item,
        provenance="estimated",
        price_source=price_source,
        retries=0,
        stopped_reason=None,
        items_per_second=None,
    )


def _summarise(
    spec: HostedSpec,
    replies: list[_Reply | None],
    labels: list[str],
    valid_labels: list[str],
    in_price: float,
    out_price: float,
    price_source: str,
    *,
    retries: int,
    exhausted: bool,
    live_seconds: float | None,
) -> HostedResult:
    n = len(replies)
    predictions: list[str | None] = []
    invalid = correct = 0
    for i, reply in enumerate(replies):
        label = None if reply is None else match_label(reply.text, valid_labels)
        if reply is not None and label is None:
            invalid += 1
            shown = reply.text[:_REPLY_SHOWN_CHARS]
            log.warning("item %d: reply %r names no label; counted as wrong", i, shown)
        correct += label is not None and label == labels[i]
        predictions.append(label)
    answered_replies = [r for r in replies if r is not None]
    live = [r for r in answered_replies if not r.cached]
    cached = [r for r in answered_replies if r.cached]

    def dollars(rs: list[_Reply]) -> float:
        # From token totals, so the figure equals usage x price exactly.
        prompt = sum(r.prompt_tokens for r in rs)
        completion = sum(r.completion_tokens for r in rs)
        return hosted_cost_per_item(prompt, completion, in_price, out_price)

    answered = len(answered_replies)
    prompt = sum(r.prompt_tokens for r in answered_replies)
    completion = sum(r.completion_tokens for r in answered_replies)
    stopped = None
    if exhausted:
        stopped = f"max_dollars (${spec.max_dollars:g}) reached after {answered} of {n} items"
        log.warning("hosted run stopped: %s", stopped)
    return HostedResult(
        predictions=predictions,
        raw_replies=[None if r is None else r.text for r in replies],
        invalid=invalid,
        answered=answered,
        accuracy=correct / answered if answered else None,
        accuracy_provenance="measured" if answered else None,
        prompt_tokens=prompt,
        completion_tokens=completion,
        dollars_spent=dollars(live),
        dollars_cached=dollars(cached),
        cost_per_item=(
            hosted_cost_per_item(prompt / answered, completion / answered, in_price, out_price)
            if answered
            else None
        ),
        provenance="measured" if all(r.measured for r in answered_replies) else "estimated",
        price_source=price_source,
        retries=retries,
        stopped_reason=stopped,
        items_per_second=len(live) / live_seconds if live and live_seconds else None,
    )
