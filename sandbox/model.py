"""The platform-neutral order: what the world generator produces, what a scenario line holds,
and what each gateway renders into its platform's native format. Amounts are yuan Decimals."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# re-exported for the callers of sandbox.model; the list itself lives in sandbox.channels
from sandbox.channels import CHANNELS as CHANNELS
from sandbox.channels import MARKETPLACES as MARKETPLACES

EVENT_TYPES = ("pay", "ship", "deliver", "cancel", "refund", "return", "reject")
UNIFIED_STATUSES = (
    "awaiting_payment",
    "paid_pending_review",
    "risk_review",
    "pending_allocation",
    "allocated",
    "picking",
    "awaiting_pickup",
    "pickup_failed",
    "in_transit",
    "delivered",
    "after_sale",
    "closed",
)
CENT = Decimal("0.01")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Receiver(_Strict):
    name: str = Field(min_length=1)
    phone: str = Field(min_length=5)
    province: str
    city: str
    district: str
    address: str = Field(description="street address below the district")


class Item(_Strict):
    sku: str = Field(min_length=1)
    qty: int = Field(gt=0)
    price: Decimal = Field(ge=0, description="unit price, yuan")
    title: str | None = None


class Coupon(_Strict):
    code: str
    issuer: Literal["platform", "shop"]
    amount: Decimal = Field(ge=0)


class Event(_Strict):
    at: datetime
    type: Literal["pay", "ship", "deliver", "cancel", "refund", "return", "reject"]

    @field_validator("at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("timestamp needs a UTC offset, e.g. 2026-11-20T10:00:00+08:00")
        return value


class Customs(BaseModel):
    model_config = ConfigDict(extra="allow")
    hs_code: str | None = None
    declared_value: Decimal | None = None


class Order(_Strict):
    """One order in neutral form (one line of a scenario file)."""

    channel: Literal[CHANNELS]  # type: ignore[valid-type]  # the names from config/channels.yaml
    platform_order_no: str = Field(min_length=1)
    shop_id: str
    created_at: datetime
    paid_at: datetime | None = None
    buyer_id: str
    buyer_ip: str | None = None
    receiver: Receiver
    items: list[Item] = Field(min_length=1)
    freight: Decimal = Field(default=Decimal("0"), ge=0)
    coupons: list[Coupon] = Field(default_factory=list)
    country: str = "CN"
    customs: Customs | None = None
    events: list[Event] = Field(default_factory=list)
    buyer_note: str | None = None
    seller_note: str | None = None
    labels: list[str] = Field(default_factory=list, description="injected anomalies")

    @field_validator("created_at", "paid_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("timestamp needs a UTC offset, e.g. 2026-11-20T10:00:00+08:00")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Order:
        if self.discount_amount > self.goods_value:
            raise ValueError("coupons exceed the goods value")
        self.events.sort(key=lambda e: e.at)
        pay = next((e.at for e in self.events if e.type == "pay"), None)
        if self.paid_at is None and pay is not None:
            self.paid_at = pay
        if self.paid_at is not None and self.paid_at < self.created_at:
            raise ValueError("paid_at is before created_at")
        return self

    # -- derived -------------------------------------------------------------------------
    @property
    def goods_value(self) -> Decimal:
        return sum((i.price * i.qty for i in self.items), Decimal("0")).quantize(CENT)

    @property
    def discount_amount(self) -> Decimal:
        return sum((c.amount for c in self.coupons), Decimal("0")).quantize(CENT)

    @property
    def paid_amount(self) -> Decimal:
        return (self.goods_value - self.discount_amount + self.freight).quantize(CENT)

    @property
    def modified_at(self) -> datetime:
        return max([self.created_at, *(e.at for e in self.events)])

    def status_at(self, when: datetime | None = None) -> str:
        """The unified status the platforms and carriers alone determine at `when` (default:
        after every event). A paid, unshipped order is `paid_pending_review`: what happens
        next is OrderPulse's decision, not the platform's."""
        kinds = [e.type for e in self.events if when is None or e.at <= when]
        paid = self.paid_at is not None and (when is None or self.paid_at <= when)
        if "cancel" in kinds:
            return "closed"
        if "refund" in kinds:
            # refunded before shipping closes the order; after shipping it is an after-sale
            return "after_sale" if "ship" in kinds else "closed"
        if "return" in kinds or "reject" in kinds:
            return "after_sale"
        if "deliver" in kinds:
            return "delivered"
        if "ship" in kinds:
            return "in_transit"
        if paid:
            return "paid_pending_review"
        return "awaiting_payment"

    def truth(self) -> dict:
        """This order's entry in `orderpulse sandbox truth` (the design's contract form)."""
        return {
            "channel": self.channel,
            "platform_order_no": self.platform_order_no,
            "status": self.status_at(),
            "goods_value": str(self.goods_value),
            "paid_amount": str(self.paid_amount),
            "labels": sorted(self.labels),
        }
