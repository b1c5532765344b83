"""How a dialogue step is described: the question it asks and what an answer leads to."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from handlers.context import Context
from handlers.messages import Button, Keyboard
from storage.models import Draft


@dataclass(frozen=True)
class Prompt:
    text: str
    keyboard: Keyboard


@dataclass(frozen=True)
class Goto:
    """Move to another step and ask its question."""

    step: str


@dataclass(frozen=True)
class Stay:
    """Ask the same question again, after `hint` if one is given."""

    hint: str | None = None


@dataclass(frozen=True)
class Finish:
    """The dialogue is over: the draft is dropped; the step has already replied."""


Transition = Goto | Stay | Finish


class Step(ABC):
    """One question of a dialogue. `name` is what the draft stores; `form` marks a draft
    that holds an appeal in progress (kept until draft_ttl_days, offered to continue);
    `keeps` one that holds what the resident sent and has not yet said where it goes (an
    addition offer: kept until draft_ttl_days too, never thrown away unasked); the others
    (a confirmation, a bookmark) are dropped once the resident is idle."""

    name: str
    form: bool = True
    keeps: bool = False

    @abstractmethod
    def prompt(self, ctx: Context, draft: Draft) -> Prompt: ...

    def again(self, ctx: Context, draft: Draft) -> Prompt:
        """The question asked again, after a hint or something shown in between: the same
        buttons, and a text that may be shorter (the consent document is not repeated)."""
        return self.prompt(ctx, draft)

    @abstractmethod
    async def handle(self, ctx: Context, draft: Draft, pressed: Button | None) -> Transition: ...

    def previous(self, ctx: Context, draft: Draft) -> str | None:
        """The step «Назад» leads to; None where there is no way back."""
        return None
