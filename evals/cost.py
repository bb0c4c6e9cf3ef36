"""Cost and ROI arithmetic, as README.md ("Cost and ROI") and docs/decision-rule.md define it.

Pure arithmetic on floats (no torch, no network), so the dashboard's sliders recompute
instantly and every formula is testable in milliseconds. Every dollar figure that enters
from outside carries its provenance (measured, a dated price table, or the user).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from pydantic import BaseModel, ConfigDict, Field, model_validator

HOURS_PER_MONTH = 730.0  # 8,760 h a year / 12: how clouds bill an always-on instance
TOKENS_PER_MTOK = 1_000_000


class Provenance(str, Enum):
    """Where a cost figure comes from."""

    measured = "measured"
    price_table = "price_table"
    user = "user"
    estimated = "estimated"


@dataclass(frozen=True)
class Figure:
    """A number with its provenance; ``source`` names the table and date, or the measurement."""

    value: float
    provenance: Provenance
    source: str = ""


@dataclass(frozen=True)
class HardwarePrice:
    """An on-demand list price for one machine."""

    name: str
    dollars_per_hour: float
    source: str
    as_of: str


# On-demand list prices, Linux, no commitment, as published by each cloud in June 2025.
# Defaults only: users override them (economics.hardware_dollars_per_hour) with what they pay.
# Single GPUs come from GPU clouds because the big three mostly sell large GPUs in 8-GPU boxes.
_PRICES_AS_OF = "2025-06"
HARDWARE_PRICES: dict[str, HardwarePrice] = {
    name: HardwarePrice(name, dollars_per_hour, source, _PRICES_AS_OF)
    for name, dollars_per_hour, source in [
        ("cpu-2core", 0.0893, "AWS EC2 c7i.large (2 vCPU, 4 GiB), us-east-1"),
        ("cpu-8core", 0.357, "AWS EC2 c7i.2xlarge (8 vCPU, 16 GiB), us-east-1"),
        ("nvidia-t4", 0.526, "AWS EC2 g4dn.xlarge (1x T4 16 GB), us-east-1"),
        ("nvidia-l4", 0.805, "AWS EC2 g6.xlarge (1x L4 24 GB), us-east-1"),
        ("nvidia-a10g", 1.006, "AWS EC2 g5.xlarge (1x A10G 24 GB), us-east-1"),
        ("nvidia-a100-80gb", 1.79, "Lambda Cloud, A100 SXM 80 GB, per GPU-hour"),
        ("nvidia-h100", 2.99, "Lambda Cloud, H100 SXM 80 GB, per GPU-hour"),
        ("nvidia-h200", 3.50, "Nebius AI Cloud, H200 141 GB, per GPU-hour"),
    ]
}


class Economics(BaseModel):
    """The user's numbers: what the task costs today and what an error costs."""

    model_config = ConfigDict(extra="forbid")

    tickets_per_month: int = Field(5_000_000, ge=0, description="Items classified per month.")
    current_solution: str = Field(
        "claude-haiku", description="Name of what classifies the items today."
    )
    current_monthly_cost: float = Field(
        2500.0, ge=0, description="Dollars a month the current solution costs (excluding errors)."
    )
    current_error_rate: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Error rate of the current solution; None = unknown, its errors then cost $0.",
    )
    cost_per_error: float = Field(
        0.0, ge=0, description="Dollars one misrouted item costs (rework, delay, churn)."
    )
    hardware: str = Field(
        "cpu-2core", description=f"Serving hardware, one of: {', '.join(HARDWARE_PRICES)}."
    )
    hardware_dollars_per_hour: float | None = Field(
        None, gt=0, description="What you pay per hour for the hardware; overrides the table."
    )
    dedicated_instance: bool = Field(
        False,
        description="Serve on an always-on instance: adds $/hour x 730 h as a monthly floor.",
    )
    engineering_hours: float = Field(
        8, ge=0, description="Engineering hours to ship a fine-tuned model (one-off)."
    )
    engineering_rate: float = Field(100.0, ge=0, description="Dollars per engineering hour.")
    cost_per_label: float | None = Field(
        None, ge=0, description="Dollars one more labelled training row costs (a person's check, or a "
        "teacher's call); prices what more labels are worth (`roitune curve`)."
    )

    @model_validator(mode="after")
    def _hardware_is_priced(self) -> Economics:
        # Fail at config time, not mid-sweep when the first $/item is computed.
        if self.hardware_dollars_per_hour is None and self.hardware not in HARDWARE_PRICES:
            raise ValueError(
                f"unknown hardware {self.hardware!r}: use one of {', '.join(HARDWARE_PRICES)}, "
                "or set hardware_dollars_per_hour"
            )
        return self

    @property
    def current_cost_per_item(self) -> float:
        """Dollars per item today, errors excluded (0 when there is no volume)."""
        if self.tickets_per_month == 0:
            return 0.0
        return self.current_monthly_cost / self.tickets_per_month

    def hardware_price(self) -> Figure:
        """$/hour of the serving hardware: the user's figure if given, else the price table."""
        if self.hardware_dollars_per_hour is not None:
            return Figure(self.hardware_dollars_per_hour, Provenance.user, "economics")
        price = HARDWARE_PRICES[self.hardware]
        return Figure(
            price.dollars_per_hour,
            Provenance.price_table,
            f"{price.source}, on-demand, as of {price.as_of}",
        )


@dataclass(frozen=True)
class Roi:
    """One candidate against the current solution, in dollars a month."""

    monthly_cost: float
    current_monthly_cost: float
    monthly_savings: float
    one_off_cost: float
    payback_months: float | None  # None: never pays back
    break_even_volume: float | None  # None: no volume breaks even; 0.0: saves at any volume
    fixed_monthly: float = 0.0


def serving_cost_per_item(dollars_per_hour: float, items_per_second: float) -> float:
    """Serving $/item = hardware $/hour / (3600 x measured items/second)."""
    if items_per_second <= 0:
        raise ValueError(f"items_per_second must be positive, got {items_per_second}")
    return dollars_per_hour / (3600.0 * items_per_second)


def hosted_cost_per_item(
    input_tokens: float,
    output_tokens: float,
    input_price_per_mtok: float,
    output_price_per_mtok: float,
) -> float:
    """Hosted-API $/item from (average) tokens per item and $ per million tokens."""
    return (
        input_tokens * input_price_per_mtok + output_tokens * output_price_per_mtok
    ) / TOKENS_PER_MTOK


def monthly_cost(
    volume: float,
    cost_per_item: float,
    error_rate: float,
    cost_per_error: float,
    fixed_monthly: float = 0.0,
) -> float:
    """Monthly cost = volume x ($/item + error rate x cost per error) + fixed monthly floor."""
    return volume * (cost_per_item + error_rate * cost_per_error) + fixed_monthly


def one_off_cost(
    compute_dollars: float, engineering_hours: float, engineering_rate: float
) -> float:
    """One-off cost = sweep compute dollars (every trial) + engineering hours x rate."""
    return compute_dollars + engineering_hours * engineering_rate


def roi(
    candidate_cost_per_item: float,
    candidate_error_rate: float,
    economics: Economics,
    *,
    compute_dollars: float,
    dedicated_fixed_monthly: float | None = None,
) -> Roi:
    """Monthly cost, savings, payback and break-even volume of a candidate vs the current one.

    The current solution costs ``current_cost_per_item`` per item (its monthly cost scales
    with volume) plus its errors, costed at 0 when its error rate is unknown. The candidate
    pays ``F`` a month fixed: ``dedicated_fixed_monthly`` if given (pass 0 for a hosted API),
    else $/hour x 730 h when ``economics.dedicated_instance``, else 0.

    With unit costs ``u_cur = current $/item + current error rate x cost per error`` and
    ``u_cand = candidate $/item + candidate error rate x cost per error``, savings at volume
    V are ``V x (u_cur - u_cand) - F``, so

    - payback months = one-off / monthly savings (None when savings <= 0: never);
    - break-even volume = F / (u_cur - u_cand) when u_cur > u_cand (0.0 when F = 0: it saves
      at any volume), None when u_cur <= u_cand (no volume breaks even).
    """
    if dedicated_fixed_monthly is not None:
        fixed = dedicated_fixed_monthly
    elif economics.dedicated_instance:
        fixed = economics.hardware_price().value * HOURS_PER_MONTH
    else:
        fixed = 0.0
    if fixed < 0:
        raise ValueError(f"dedicated_fixed_monthly must be >= 0, got {fixed}")

    volume = economics.tickets_per_month
    cost_per_error = economics.cost_per_error
    current_error_rate = economics.current_error_rate or 0.0  # unknown: its errors cost $0
    current = monthly_cost(
        volume, economics.current_cost_per_item, current_error_rate, cost_per_error
    )
    candidate = monthly_cost(
        volume, candidate_cost_per_item, candidate_error_rate, cost_per_error, fixed
    )
    # Savings = current - candidate = V x unit_savings - F. Computed from the unit difference
    # so that large error costs which cancel out do not eat the precision of a small saving;
    # being linear in V, they cross zero at V = F / unit_savings.
    unit_savings = (economics.current_cost_per_item - candidate_cost_per_item) + (
        current_error_rate - candidate_error_rate
    ) * cost_per_error
    savings = volume * unit_savings - fixed
    break_even = fixed / unit_savings if unit_savings > 0 else None
    one_off = one_off_cost(compute_dollars, economics.engineering_hours, economics.engineering_rate)

    return Roi(
        monthly_cost=candidate,
        current_monthly_cost=current,
        monthly_savings=savings,
        one_off_cost=one_off,
        payback_months=one_off / savings if savings > 0 else None,
        break_even_volume=break_even,
        fixed_monthly=fixed,
    )


@dataclass(frozen=True)
class LabelPayback:
    """What ``rows`` more labelled rows cost once, and what their accuracy gain saves a month."""

    rows: int
    one_off: float  # rows x cost per label + the retraining's compute
    monthly_savings: float  # errors avoided: volume x accuracy gain x cost per error
    payback_months: float | None  # None: never (no gain, or errors cost nothing)


def label_payback(rows: int, gain: float, economics: Economics, *, retrain_dollars: float = 0.0) -> LabelPayback | None:
    """The payback of more labels: error cost per month = volume x error rate x cost per error, so a
    gain of ``gain`` in accuracy saves volume x gain x cost per error a month. None when
    ``economics.cost_per_label`` is not set (nothing to price the labels with)."""
    if economics.cost_per_label is None:
        return None
    one_off = rows * economics.cost_per_label + retrain_dollars
    savings = economics.tickets_per_month * gain * economics.cost_per_error
    return LabelPayback(rows, one_off, savings, one_off / savings if savings > 0 else None)


def payback_curve(roi: Roi, months: int) -> list[float]:
    """Cumulative net savings after 0, 1, ..., ``months`` months (starts at -one-off)."""
    return [-roi.one_off_cost + m * roi.monthly_savings for m in range(months + 1)]


def api_price(model: str, provider: str | None = None) -> tuple[float, float, str]:
    """``(input $/MTok, output $/MTok, source)`` of a hosted model, from genai-prices' snapshot.

    Works offline: genai-prices ships its price data. Prices are read at a small usage
    (1,000 tokens each way) so tiered models report their base tier, the one short
    classification prompts pay. Raises ValueError naming the model when it is unknown.
    """
    # Imported here: loading the price snapshot takes ~0.5 s, paid only by callers that price.
    import genai_prices

    probe = 1000
    try:
        calc = genai_prices.calc_price(
            genai_prices.Usage(input_tokens=probe, output_tokens=probe), model, provider_id=provider
        )
    except LookupError as exc:
        where = f" from provider {provider!r}" if provider else ""
        raise ValueError(
            f"no price known for model {model!r}{where} in genai-prices "
            f"{genai_prices.__version__} ({exc}); use the provider's exact model id "
            "(e.g. 'claude-haiku-4-5', 'gpt-4o-mini') or enter the prices yourself"
        ) from exc
    scale = TOKENS_PER_MTOK / probe
    source = (
        f"genai-prices {genai_prices.__version__} snapshot: "
        f"{calc.provider.name} {calc.model.name or calc.model.id}"
    )
    return float(calc.input_price) * scale, float(calc.output_price) * scale, source
