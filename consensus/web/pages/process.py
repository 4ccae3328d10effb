"""The process page (processes.show), the round page's status part (processes.round_page)
and the participant ids every process view loads (processes.load_process)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from consensus.extensions import db
from consensus.models import Process, Round
from consensus.web.fragments import Part
from consensus.web.pages import CachedPart, CachedValue, Slots, declare_key


@declare_key
@dataclass(frozen=True)
class ProcessKey:
    """Data only: the same for every viewer."""

    process_id: int


@declare_key
@dataclass(frozen=True)
class RoundKey:
    """Data only: the same for every viewer."""

    round_id: int


@declare_key
@dataclass(frozen=True)
class ProcessBodyKey:
    """The body shows the manage links to facilitators of the process."""

    process_id: int
    can_manage: bool


# Hundreds of ids at national scale: kept for this state of the data.
PARTICIPANT_IDS = CachedValue("participant-ids", ProcessKey)
BODY = CachedPart("process-page", "processes/_show_body.html", ProcessBodyKey)
PARTICIPANTS = CachedPart("process-participants", "processes/_participants.html", ProcessKey)
ROUND_STATUS = CachedPart("round-status", "processes/_status.html", RoundKey)


def participant_ids(process: Process) -> frozenset[int]:
    return PARTICIPANT_IDS.get(
        ProcessKey(process.id), compute=lambda: frozenset(process.participant_ids)
    )


def round_status(process: Process, round_: Round) -> Markup:
    """Who has acted in a round: the same for every viewer, so one cached part."""
    from consensus.services import processes as service

    return ROUND_STATUS.html(
        RoundKey(round_.id),
        lambda: {
            "process": process,
            "round": round_,
            "statuses": service.response_status(process, round_),
        },
    )


def body(
    process: Process,
    current: Round | None,
    *,
    can_manage: bool,
    act_form: Callable[[], str],
    primary_action: Callable[[], str],
) -> Part:
    """The page body, with the viewer's mark-complete form and primary action in its slots
    (rendered per request, never kept)."""

    def context() -> dict[str, object]:
        # The timeline says which deadlines were extended: every round's extensions at once.
        db.session.execute(
            select(Round)
            .where(Round.process_id == process.id)
            .options(selectinload(Round.extensions))
        ).all()
        return {
            "process": process,
            "current": current,
            "can_manage": can_manage,
            "status_html": round_status(process, current) if current else "",
            "participants_html": PARTICIPANTS.html(
                ProcessKey(process.id), lambda: {"process": process}
            ),
        }

    slots: Slots = {"act-form": act_form, "primary-action": primary_action}
    return BODY.part(ProcessBodyKey(process.id, can_manage), context, slots=slots)
