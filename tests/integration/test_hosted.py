"""evals.hosted against real HTTP: the served TF-IDF model behind a fault-injecting proxy."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import pytest

import evals.hosted as hosted
from evals.cost import hosted_cost_per_item
from evals.hosted import HostedError, HostedSpec, match_label, run_hosted

KEY_ENV = "ROITUNE_TEST_HOSTED_KEY"
SECRET = "sk-test-PLANTED-SECRET-123"
IN_PRICE = 3.0  # $/MTok, entered in the config so no price table is consulted
OUT_PRICE = 15.0


@pytest.fixture(autouse=True)
def _fast_backoff_and_key(monkeypatch):
    monkeypatch.setattr(hosted, "_BACKOFF_BASE_S", 0.005)
    monkeypatch.setenv(KEY_ENV, SECRET)


def _spec(proxy, **overrides) -> HostedSpec:
    fields = dict(
        base_url=proxy.base_url,
        model="tfidf-logreg-tickets",
        api_key_env=KEY_ENV,
        input_price_per_mtok=IN_PRICE,
        output_price_per_mtok=OUT_PRICE,
        concurrency=1,
        timeout_s=5.0,
    )
    fields.update(overrides)
    return HostedSpec(**fields)


def _run(proxy, tickets, tmp_path: Path, **overrides):
    return run_hosted(
        _spec(proxy, **overrides),
        tickets.conversations,
        tickets.gold,
        cache_dir=tmp_path / "cache",
        label_set=tickets.labels,
    )


def _paid_dollars(proxy) -> float:
    return (proxy.paid_prompt_tokens * IN_PRICE + proxy.paid_completion_tokens * OUT_PRICE) / 1e6


def test_normal_run_measures_labels_usage_and_dollars(proxy, classifier, tickets, tmp_path):
    seen: list[int] = []
    result = run_hosted(
        _spec(proxy, concurrency=4),
        tickets.conversations,
        tickets.gold,
        cache_dir=tmp_path / "cache",
        progress=seen.append,
    )
    n = len(tickets.gold)
    expected = [classifier.classify(m) for m in tickets.conversations]
    assert result.predictions == [a.label for a in expected] == tickets.gold
    assert result.raw_replies == tickets.gold
    assert result.invalid == 0 and result.answered == n
    assert result.accuracy == 1.0 and result.accuracy_provenance == "measured"
    assert result.prompt_tokens == sum(a.prompt_tokens for a in expected)
    assert result.prompt_tokens == proxy.paid_prompt_tokens
    assert result.completion_tokens == n == proxy.paid_completion_tokens
    # Dollars are usage x price, exactly; nothing came from the cache.
    dollars = (result.prompt_tokens * IN_PRICE + result.completion_tokens * OUT_PRICE) / 1e6
    assert result.dollars_spent == dollars == _paid_dollars(proxy)
    assert result.dollars_cached == 0.0
    assert result.cost_per_item == pytest.approx(dollars / n, rel=1e-12)
    assert result.provenance == "measured"
    assert result.price_source == "entered by the user"
    assert result.stopped_reason is None and result.retries == 0
    assert result.items_per_second is not None and result.items_per_second > 0
    assert proxy.calls == proxy.paid == n
    assert proxy.auth_headers == [f"Bearer {SECRET}"] * n  # the key was really sent
    assert sorted(seen) == list(range(1, n + 1))


def test_429_is_retried_and_the_item_counted_once(proxy, tickets, tmp_path):
    proxy.faults = ["429"]
    result = _run(proxy, tickets, tmp_path)
    n = len(tickets.gold)
    assert result.retries == 1
    assert result.predictions == tickets.gold
    assert proxy.calls == n + 1 and proxy.paid == n
    assert result.prompt_tokens == proxy.paid_prompt_tokens
    assert result.dollars_spent == _paid_dollars(proxy)


def test_500_until_it_gives_up_with_a_clear_error(proxy, tickets, tmp_path):
    proxy.faults = ["500"] * 10
    with pytest.raises(HostedError, match=r"endpoint returned 500 after 2 retries for item 0"):
        _run(proxy, tickets, tmp_path, max_retries=2)
    assert proxy.calls == 3  # one try + two retries, and no other item was started
    assert proxy.paid == 0


def test_timeout_is_retried_then_succeeds(proxy, tickets, tmp_path):
    proxy.faults = ["sleep:1.5"]
    result = _run(proxy, tickets, tmp_path, timeout_s=0.4)
    assert result.retries == 1
    assert result.predictions == tickets.gold
    assert proxy.calls == len(tickets.gold) + 1


def test_timeouts_until_it_gives_up(proxy, tickets, tmp_path):
    proxy.faults = ["sleep:1.0", "sleep:1.0"]
    expected = r"endpoint timed out \(0.3 s\) after 1 retries for item 0"
    with pytest.raises(HostedError, match=expected):
        _run(proxy, tickets, tmp_path, timeout_s=0.3, max_retries=1)


def test_malformed_bodies_are_retried_and_odd_replies_matched_or_invalid(
    proxy, tickets, tmp_path, caplog
):
    # Item 0: an HTML body, then a truncated JSON body, then a good reply (2 retries).
    # Item 1: a reply that names no label -> invalid. Item 2: "Category: Shipping." -> shipping.
    proxy.faults = ["garbage", "badjson", None, "reply:I think it is about the weather",
                    "reply:Category: Shipping."]
    with caplog.at_level(logging.WARNING, logger="evals.hosted"):
        result = _run(proxy, tickets, tmp_path)
    assert result.retries == 2
    assert result.predictions[0] == tickets.gold[0]
    assert result.predictions[1] is None
    assert result.raw_replies[1] == "I think it is about the weather"
    assert result.predictions[2] == "shipping" == tickets.gold[2]
    assert result.predictions[3:] == tickets.gold[3:]
    assert result.invalid == 1
    assert result.accuracy == (len(tickets.gold) - 1) / len(tickets.gold)
    assert "item 1: reply 'I think it is about the weather' names no label" in caplog.text
    # Billed replies count whatever they said; the malformed bodies were never delivered.
    assert result.dollars_spent == _paid_dollars(proxy)


def test_dollar_cap_stops_cleanly_and_never_overspends(proxy, tickets, tmp_path):
    # Each call's worst case (~$0.00056: len/2 tokens, 16 output tokens) is ~6x what it
    # really costs (~$0.00009), so a call in flight blocks others that would still fit
    # once it settles: they wait for it rather than stopping the run early.
    cap = 0.001
    result = _run(proxy, tickets, tmp_path, max_dollars=cap, concurrency=3)
    n = len(tickets.gold)
    assert result.stopped_reason is not None
    assert result.stopped_reason.startswith("max_dollars ($0.001) reached after")
    assert 3 <= result.answered < n
    assert result.stopped_reason.endswith(f"after {result.answered} of {n} items")
    assert result.dollars_spent <= cap
    # The server saw exactly the calls the client paid for, and none past the cap.
    assert proxy.calls == proxy.paid == result.answered
    assert result.dollars_spent == _paid_dollars(proxy)
    assert [p is None for p in result.predictions].count(True) == n - result.answered

    # A rerun with room to spare pays only for the items the first run did not reach.
    rest = _run(proxy, tickets, tmp_path, max_dollars=1.0)
    assert rest.stopped_reason is None and rest.predictions == tickets.gold
    assert proxy.paid == n
    assert rest.dollars_cached == result.dollars_spent


@pytest.mark.timeout(30)
def test_a_failure_while_others_wait_for_budget_ends_the_run(proxy, tickets, tmp_path):
    # With a tight cap, workers wait for calls in flight to settle; a call that fails
    # must hand its reservation back so they wake up, and the error must surface.
    proxy.faults = ["500"] * 20
    with pytest.raises(HostedError, match="returned 500 after 0 retries"):
        _run(proxy, tickets, tmp_path, max_dollars=0.001, concurrency=4, max_retries=0)
    assert proxy.paid == 0


def test_a_timed_out_call_counts_against_the_cap(proxy, tickets, tmp_path):
    # The provider may bill a call the client gave up on, so its worst case (~$0.00056)
    # stays booked: with $0.0012 there is room for the retry but then little else.
    proxy.faults = ["sleep:1.0"]
    result = _run(proxy, tickets, tmp_path, timeout_s=0.3, max_dollars=0.0012)
    assert result.retries == 1
    assert result.stopped_reason is not None
    assert 1 <= result.answered <= 6
    assert result.dollars_spent + 0.00053 <= 0.0012
    assert proxy.paid == result.answered


def test_second_run_is_free_and_makes_no_call(proxy, tickets, tmp_path):
    first = _run(proxy, tickets, tmp_path, concurrency=4)
    calls = proxy.calls
    second = _run(proxy, tickets, tmp_path, concurrency=4)
    assert proxy.calls == calls
    assert second.dollars_spent == 0.0
    assert second.dollars_cached == first.dollars_spent > 0
    assert second.predictions == first.predictions
    assert second.cost_per_item == first.cost_per_item
    assert (second.prompt_tokens, second.completion_tokens) == (
        first.prompt_tokens,
        first.completion_tokens,
    )
    assert second.items_per_second is None


def test_a_crash_mid_batch_keeps_what_was_paid_for(proxy, tickets, tmp_path):
    # Items 0-2 answered, then item 3 hits a 500 with no retries left: the run fails.
    proxy.faults = [None, None, None, "500"]
    with pytest.raises(HostedError, match="item 3"):
        _run(proxy, tickets, tmp_path, max_retries=0)
    assert proxy.paid == 3
    rerun = _run(proxy, tickets, tmp_path, max_retries=0)
    assert proxy.paid == len(tickets.gold)  # items 0-2 were not bought again
    assert rerun.predictions == tickets.gold
    assert rerun.dollars_cached > 0 and rerun.dollars_spent > 0


def test_the_key_never_leaks(proxy, tickets, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    for name in ("openai", "httpx", "httpx2", "httpcore", "httpcore2", "evals.hosted"):
        caplog.set_level(logging.DEBUG, logger=name)
    proxy.faults = ["429", "reply:not a label at all"]
    result = _run(proxy, tickets, tmp_path)
    proxy.faults = ["401-echo"]
    with pytest.raises(HostedError) as excinfo:
        _run(proxy, tickets, tmp_path / "other")
    assert "returned 401 for item 0" in str(excinfo.value)
    assert proxy.auth_headers[-1] == f"Bearer {SECRET}"  # it was sent, and echoed back

    # The transport's DEBUG lines were captured, so the check below is not vacuous.
    assert {"openai._base_client", "httpx2"} <= {r.name for r in caplog.records}
    everything = [
        caplog.text,
        *(str(r.args) for r in caplog.records),
        repr(result),
        str(excinfo.value),
        repr(excinfo.value),
        "".join(traceback.format_exception(excinfo.value)),
        repr(_spec(proxy)),
        _spec(proxy).model_dump_json(),
    ]
    chained: BaseException | None = excinfo.value
    while chained is not None:  # what a traceback printer that ignores `from None` would show
        everything.append(repr(chained))
        chained = chained.__cause__ or chained.__context__
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files
    everything += [p.read_bytes().decode("utf-8", "replace") for p in files]
    for text in everything:
        assert SECRET not in text


def test_missing_key_names_the_variable(proxy, tickets, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(HostedError, match=KEY_ENV):
        _run(proxy, tickets, tmp_path)
    assert proxy.calls == 0


def test_estimate_mode_makes_no_call(proxy, tickets, tmp_path, monkeypatch):
    monkeypatch.delenv(KEY_ENV)  # estimate mode needs no key

    def words(text: str) -> int:
        return len(text.split())

    result = run_hosted(
        _spec(proxy, mode="estimate", assumed_accuracy=0.9),
        tickets.conversations,
        tickets.gold,
        cache_dir=tmp_path / "cache",
        count_tokens=words,
    )
    n = len(tickets.gold)
    assert proxy.calls == 0
    assert result.provenance == "estimated"
    assert result.predictions == [None] * n and result.answered == 0
    assert result.accuracy == 0.9 and result.accuracy_provenance == "user"
    assert result.dollars_spent == 0.0
    # Chat overhead: 4 tokens a message and 3 to prime the reply, as the client counts it.
    prompt = sum(sum(words(m["content"]) + 4 for m in c) + 3 for c in tickets.conversations)
    assert result.prompt_tokens == prompt
    assert result.completion_tokens == n  # each gold label is one word
    assert result.cost_per_item == hosted_cost_per_item(prompt / n, 1.0, IN_PRICE, OUT_PRICE)


def test_estimate_mode_prices_from_the_table(tickets, tmp_path):
    spec = HostedSpec(model="gpt-4o-mini", provider="openai", mode="estimate")
    result = run_hosted(spec, tickets.conversations, tickets.gold, cache_dir=tmp_path)
    assert result.price_source.startswith("genai-prices")
    assert result.cost_per_item is not None and result.cost_per_item > 0
    assert result.accuracy is None and result.accuracy_provenance is None


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("account_access", "account_access"),
        ("Account Access", "account_access"),
        ("  'account-access'.  ", "account_access"),
        ('"Billing"', "billing"),
        ("Category: technical", "technical"),
        ("label = SHIPPING.", "shipping"),
        ("billing\nBecause the customer mentions a refund.", "billing"),
        ("refund", None),
        ("billing or shipping", None),
        ("", None),
    ],
)
def test_match_label(reply, expected):
    assert match_label(reply, ["account_access", "billing", "shipping", "technical"]) == expected
