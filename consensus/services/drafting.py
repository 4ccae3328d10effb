"""Drafting as partner organisations do it (issue 21): line references and consolidation.

Line numbers are a pure function of a version's text (consensus.domain.lines); this module
gives the views and the disposition report one way to ask for them ("p. 3, lines 12–14"),
so the page, the diff, the report and the line-numbered PDF always agree.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from consensus import audit, events, permissions
from consensus.domain.canonical import BlockChange, canonicalise
from consensus.domain.lines import (
    NumberedParagraph,
    Reference,
    changed_span,
    insertion_reference,
    map_lines,
    number_paragraphs,
    reference,
)
from consensus.domain.overlap import Claim, groups
from consensus.domain.visible import require_visible, visible_line
from consensus.extensions import db
from consensus.models import (
    Amendment,
    AmendmentState,
    Comment,
    Consolidation,
    ConsolidationMember,
    Contribution,
    ContributionKind,
    ContributionNote,
    ContributionState,
    DispositionFeedback,
    DispositionReview,
    DraftingSettings,
    FeedbackResponse,
    Organisation,
    Position,
    Process,
    ProcessState,
    Round,
    RoundState,
    User,
    Version,
    utcnow,
)
from consensus.permissions import drafting as drafting_rules
from consensus.services import positions
from consensus.services.errors import Conflict, DomainError, Forbidden


def numbered(version: Version) -> list[NumberedParagraph]:
    """The version's paragraphs with their line numbers."""
    return number_paragraphs([(p.anchor, p.text) for p in version.paragraphs])


def reference_label(ref: Reference | None, *, insertion: bool = False) -> str:
    """ "p. 3, lines 12–14" in the reader's language ("" without a reference)."""
    if ref is None:
        return ""
    if insertion:
        return str(_l("after p. %(p)s (line %(l)s)", p=ref.paragraphs, l=ref.lines))
    if ref.single_line:
        return str(_l("p. %(p)s, line %(l)s", p=ref.paragraphs, l=ref.lines))
    return str(_l("p. %(p)s, lines %(l)s", p=ref.paragraphs, l=ref.lines))


# The role shown with a comment submitted as an organisation's contribution.
ORGANISATION_ROLE = "organisation"


class References:
    """Line references of amendments for one request: each version is numbered once."""

    def __init__(self, versions: Iterable[Version]) -> None:
        self._versions = {v.id: v for v in versions}
        self._numbered: dict[int, list[NumberedParagraph]] = {}

    def lines_of(self, version_id: int) -> list[NumberedParagraph]:
        if version_id not in self._numbered:
            version = self._versions.get(version_id)
            self._numbered[version_id] = numbered(version) if version is not None else []
        return self._numbered[version_id]

    def of(self, amendment: Amendment) -> Reference | None:
        """Where the amendment applies, in the version it was written (or re-based)
        against: the lines it actually changes, or where its new paragraphs go."""
        lines = self.lines_of(amendment.base_version_id)
        if amendment.is_insertion:
            return insertion_reference(lines, amendment.insert_after_anchor or "")
        span = changed_span(amendment.original_text, amendment.proposed_text)
        return reference(lines, amendment.paragraph_anchor or "", amendment.end_anchor, span)

    def label(self, amendment: Amendment) -> str:
        return reference_label(self.of(amendment), insertion=amendment.is_insertion)

    def in_version(self, amendment: Amendment, version_id: int) -> str:
        """The amendment's lines as lines of another version (a newer one, say): mapped
        through the paragraphs' anchors and their words (domain.lines.map_lines)."""
        ref = self.of(amendment)
        if ref is None or version_id == amendment.base_version_id:
            return ""
        mapped = map_lines(
            self.lines_of(amendment.base_version_id),
            self.lines_of(version_id),
            ref.first_line,
            ref.last_line,
        )
        return reference_label(mapped, insertion=amendment.is_insertion)

    def paragraph(self, version_id: int, anchor: str | None) -> str:
        """A whole paragraph's reference ("p. 3, lines 12–14"); "" when not found."""
        if anchor is None:
            return ""
        return reference_label(reference(self.lines_of(version_id), anchor))


class DiffLines:
    """The line numbers of each row of a version diff, old and new (the diff, the apply
    preview): "lines 12–14 (before: 11–13)"."""

    def __init__(self, old: Sequence[tuple[str, str]], new: Sequence[tuple[str, str]]) -> None:
        self._old = {p.anchor: p for p in number_paragraphs(old)}
        self._new = {p.anchor: p for p in number_paragraphs(new)}

    @staticmethod
    def _span(paragraph: NumberedParagraph | None) -> str:
        if paragraph is None:
            return ""
        if paragraph.first_line == paragraph.last_line:
            return str(paragraph.first_line)
        return f"{paragraph.first_line}\u2013{paragraph.last_line}"

    def label(self, change: BlockChange) -> str:
        old = self._span(self._old.get(change.old_anchor or ""))
        new = self._span(self._new.get(change.new_anchor or ""))
        if change.kind == "removed":
            return str(_l("before: lines %(old)s", old=old)) if old else ""
        if change.kind == "changed" and old and old != new:
            return str(_l("lines %(new)s (before: %(old)s)", new=new, old=old))
        return str(_l("lines %(new)s", new=new)) if new else ""


# --- Consolidation ---------------------------------------------------------------------------


@dataclass
class AmendmentGroup:
    """Amendments of one version that claim overlapping paragraphs (domain.overlap), with
    the stretch they cover together: what a group decision settles."""

    version: Version
    amendments: list[Amendment]
    first_anchor: str
    last_anchor: str
    insertion: bool  # every member inserts after first_anchor
    original_text: str
    consolidation: Consolidation | None = None

    @property
    def overlapping(self) -> bool:
        return len(self.amendments) > 1

    @property
    def numbers(self) -> list[int]:
        return [a.number for a in self.amendments]

    @property
    def key(self) -> str:
        return "-".join(str(n) for n in self.numbers)

    @property
    def undecided(self) -> bool:
        return any(a.state == AmendmentState.PENDING for a in self.amendments)


def open_amendments(position_id: int) -> list[Amendment]:
    """Amendments still to be settled or applied: not withdrawn, not part of a version."""
    return [
        a
        for a in positions.load_amendments(position_id)
        if a.state != AmendmentState.WITHDRAWN and a.applied_in_version_id is None
    ]


def consolidations_of(position_id: int) -> dict[int, Consolidation]:
    """Unapplied consolidations of a position, by member amendment id."""
    found = db.session.execute(
        select(Consolidation).where(
            Consolidation.position_id == position_id,
            Consolidation.applied_in_version_id.is_(None),
        )
    ).scalars()
    return {m.amendment_id: c for c in found for m in c.members}


def amendment_groups(
    position: Position, amendments: Sequence[Amendment] | None = None
) -> list[AmendmentGroup]:
    """The open amendments per version they were written (or re-based) against, in groups
    of overlapping ones (overlapping groups first, then by place in the text)."""
    items = list(amendments) if amendments is not None else open_amendments(position.id)
    versions = {v.id: v for v in position.versions}
    consolidated = consolidations_of(position.id)
    result: list[AmendmentGroup] = []
    by_version: dict[int, list[Amendment]] = {}
    for amendment in items:
        by_version.setdefault(amendment.base_version_id, []).append(amendment)
    for version_id in sorted(by_version, key=lambda i: versions[i].number):
        version = versions[version_id]
        index = {p.anchor: i for i, p in enumerate(version.paragraphs)}
        claims: list[Claim[int]] = []
        by_id = {}
        for a in by_version[version_id]:
            start = index.get(a.paragraph_anchor or a.insert_after_anchor or "")
            if start is None:
                continue  # a paragraph that is not there: the apply page shows the conflict
            end = index.get(a.end_anchor, start) if a.end_anchor else start
            claims.append(Claim(a.id, start, end, a.is_insertion))
            by_id[a.id] = a
        for ids in groups(claims):
            members = [by_id[i] for i in ids]
            member_claims = [c for c in claims if c.key in ids]
            insertion = all(c.insertion for c in member_claims)
            replacing = [c for c in member_claims if not c.insertion]
            first = min(c.first for c in replacing) if replacing else member_claims[0].first
            last = max(c.last for c in replacing) if replacing else first
            paragraphs = version.paragraphs[first : last + 1]
            consolidation = next(
                (consolidated[a.id] for a in members if a.id in consolidated), None
            )
            result.append(
                AmendmentGroup(
                    version=version,
                    amendments=sorted(members, key=lambda a: a.number),
                    first_anchor=paragraphs[0].anchor,
                    last_anchor=paragraphs[-1].anchor,
                    insertion=insertion,
                    original_text="" if insertion else "\n\n".join(p.text for p in paragraphs),
                    consolidation=consolidation,
                )
            )
    result.sort(key=lambda g: (not g.overlapping, g.version.number))
    return result


class GroupDecision(enum.StrEnum):
    ADOPT = "adopt"  # adopt one amendment, reject the others with a shared reason
    REJECT = "reject"  # reject them all with a shared reason
    COMPROMISE = "compromise"  # the facilitator's own text for the whole stretch


def _dissolve(amendments: Sequence[Amendment], actor: User) -> None:
    """Take these amendments out of an unapplied consolidation (a new decision replaces
    it); a consolidation left without members goes (the audit trail keeps it)."""
    ids = {a.id for a in amendments}
    for consolidation in set(consolidations_of(amendments[0].position_id).values()):
        leaving = [m for m in consolidation.members if m.amendment_id in ids]
        if not leaving:
            continue
        for member in leaving:
            consolidation.members.remove(member)
        audit.record(
            "consolidation.dissolved" if not consolidation.members else "consolidation.left",
            actor=actor,
            object_type="consolidation",
            object_id=consolidation.id,
            payload={"amendments": sorted(m.amendment_id for m in leaving)},
        )
        if not consolidation.members:
            db.session.delete(consolidation)
    db.session.flush()


def leave_consolidation(amendment: Amendment, actor: User) -> None:
    """An amendment decided on its own leaves the consolidation it was in."""
    if amendment.id in consolidations_of(amendment.position_id):
        _dissolve([amendment], actor)


def decide_group(
    position: Position,
    process: Process,
    *,
    actor: User,
    numbers: Sequence[int],
    decision: GroupDecision | str,
    reason: str,
    shared_reason: str = "",
    chosen: int | None = None,
    compromise_text: str = "",
) -> list[Amendment]:
    """The facilitator decides a group of overlapping amendments at once: adopt one and
    reject the others with one shared reason, reject them all, or adopt a compromise text
    of their own for the whole stretch the group covers (every member is then accepted
    in part, with that text). The numbers must be exactly one group as it is now, so a
    decision never covers an amendment the facilitator did not see."""
    if not permissions.can_manage_process(actor, process):
        raise Forbidden(str(_l("Only a facilitator of this process can do this.")))
    if process.state not in {ProcessState.DRAFT, ProcessState.ACTIVE}:
        raise DomainError(str(_l("This process has ended and can no longer change.")))
    try:
        decision = GroupDecision(decision)
    except ValueError:
        raise DomainError(str(_l("Choose a decision.")), field="decision") from None
    wanted = sorted(set(numbers))
    group = next((g for g in amendment_groups(position) if g.numbers == wanted), None)
    if group is None:
        raise Conflict(
            str(_l("These amendments are no longer one open group. Check the page again."))
        )
    why = visible_line(reason, field="reason")
    shared = visible_line(shared_reason, field="shared_reason")
    members = group.amendments
    if decision == GroupDecision.ADOPT:
        adopted = next((a for a in members if a.number == chosen), None)
        if adopted is None:
            raise DomainError(str(_l("Choose the amendment to adopt.")), field="decision")
        if not why:
            raise DomainError(str(_l("Give the reason for this decision.")), field="reason")
        if len(members) > 1 and not shared:
            raise DomainError(
                str(_l("Give the reason for rejecting the others.")), field="shared_reason"
            )
        _dissolve(members, actor)
        positions.decide_amendment(
            adopted, process, actor=actor, decision=AmendmentState.ACCEPTED, reason=why
        )
        for other in members:
            if other is not adopted:
                positions.decide_amendment(
                    other, process, actor=actor, decision=AmendmentState.REJECTED, reason=shared
                )
    elif decision == GroupDecision.REJECT:
        shared = shared or why
        if not shared:
            # The form shows the shared reason only for a group of more than one.
            raise DomainError(
                str(_l("Give the reason for this decision.")),
                field="shared_reason" if len(members) > 1 else "reason",
            )
        _dissolve(members, actor)
        for member in members:
            positions.decide_amendment(
                member, process, actor=actor, decision=AmendmentState.REJECTED, reason=shared
            )
    else:
        _compromise(group, process, actor=actor, text=compromise_text, reason=why)
    return members


def _compromise(
    group: AmendmentGroup, process: Process, *, actor: User, text: str, reason: str
) -> Consolidation:
    compromise = require_visible(canonicalise(text).strip("\n"), field="compromise_text")
    if not reason:
        raise DomainError(str(_l("Give the reason for this decision.")), field="reason")
    if not compromise and group.insertion:
        raise DomainError(str(_l("Write the new paragraph.")), field="compromise_text")
    if len(compromise) > positions.MAX_BODY:
        raise DomainError(str(_l("The text is too long.")), field="compromise_text")
    if compromise == group.original_text:
        raise DomainError(
            str(_l("This is the current text: choose \u201creject all\u201d instead.")),
            field="compromise_text",
        )
    members = group.amendments
    _dissolve(members, actor)
    now = utcnow()
    consolidation = Consolidation(
        position_id=group.version.position_id,
        version_id=group.version.id,
        paragraph_anchor=group.first_anchor,
        end_anchor=group.last_anchor if group.last_anchor != group.first_anchor else None,
        insertion=group.insertion,
        original_text=group.original_text,
        compromise_text=compromise,
        reason=reason,
        decided_by_id=actor.id,
        decided_at=now,
    )
    consolidation.members = [ConsolidationMember(amendment_id=a.id) for a in members]
    db.session.add(consolidation)
    db.session.flush()
    for member in members:
        previous = member.state
        member.state = AmendmentState.ACCEPTED_IN_PART
        member.adopted_text = compromise
        member.decision_reason = reason
        member.decided_by_id = actor.id
        member.decided_at = now
        audit.record(
            "amendment.decided",
            actor=actor,
            object_type="amendment",
            object_id=member.id,
            organisation_id=member.organisation_id,
            payload={
                "number": member.number,
                "from": previous.value,
                "decision": member.state.value,
                "reason": reason,
                "adopted_text": compromise,
                "consolidation": consolidation.id,
            },
        )
        events.record(
            events.AmendmentDecided(
                amendment_id=member.id, position_id=member.position_id, state=member.state.value
            )
        )
    audit.record(
        "consolidation.decided",
        actor=actor,
        object_type="consolidation",
        object_id=consolidation.id,
        payload={
            "position": group.version.position_id,
            "version": group.version.id,
            "amendments": group.numbers,
            "paragraph": consolidation.paragraph_anchor,
            "end": consolidation.end_anchor,
            "insertion": consolidation.insertion,
            "compromise_text": compromise,
            "reason": reason,
        },
    )
    db.session.flush()
    return consolidation


def consolidation_conflict(
    consolidation: Consolidation, base: Version, claimed: dict[str, int]
) -> str | None:
    """The conflict rule for a compromise, as for one amendment: its stretch is still in
    the latest version with the text it was decided against, and nothing else applied in
    the same step claims it. None when it applies cleanly."""
    anchors = [p.anchor for p in base.paragraphs]
    if consolidation.paragraph_anchor not in anchors or (
        consolidation.end_anchor is not None and consolidation.end_anchor not in anchors
    ):
        return str(_l("The paragraphs of the compromise are no longer in the latest version."))
    if consolidation.insertion:
        return None
    first = anchors.index(consolidation.paragraph_anchor)
    last = anchors.index(consolidation.end_anchor or consolidation.paragraph_anchor)
    paragraphs = base.paragraphs[first : last + 1]
    current = "\n\n".join(p.text for p in paragraphs)
    if consolidation.version_id != base.id and current != consolidation.original_text:
        return str(_l("The paragraphs of the compromise have changed since it was decided."))
    for paragraph in paragraphs:
        if paragraph.anchor in claimed:
            return str(
                _l(
                    "The compromise changes the same paragraph as amendment %(n)d.",
                    n=claimed[paragraph.anchor],
                )
            )
    return None


# --- Organisation contributions -------------------------------------------------------------


def set_individual_contributions(process: Process, *, actor: User, allowed: bool) -> None:
    """A facilitator decides whether people may still comment and propose individually, or
    only through their organisation's cleared contribution."""
    if not permissions.can_manage_process(actor, process):
        raise Forbidden(str(_l("Only a facilitator of this process can do this.")))
    settings = db.session.get(DraftingSettings, process.id)
    before = settings.individual_contributions if settings is not None else True
    if settings is None:
        settings = DraftingSettings(process_id=process.id, individual_contributions=allowed)
        db.session.add(settings)
    settings.individual_contributions = allowed
    if before != allowed:
        audit.record(
            "process.drafting_settings",
            actor=actor,
            object_type="process",
            object_id=process.id,
            payload={"individual_contributions": allowed},
        )
    db.session.flush()


def _require(decision: permissions.Gate) -> None:
    if not decision:
        raise Forbidden(decision.reason or str(_l("You may not do this now.")))


def _clean_contribution(
    kind: ContributionKind, text: str, rationale: str, *, insertion: bool
) -> tuple[str, str]:
    if kind == ContributionKind.COMMENT:
        body = require_visible(canonicalise(text).strip(), field="text")
        if not body:
            raise DomainError(str(_l("Write a comment.")), field="text")
        if len(body) > positions.MAX_COMMENT:
            raise DomainError(str(_l("The comment is too long.")), field="text")
        return body, ""
    proposed = require_visible(canonicalise(text).strip("\n"), field="text")
    reason = visible_line(rationale, field="rationale")
    if not reason:
        raise DomainError(str(_l("Explain why you propose this change.")), field="rationale")
    if len(reason) > positions.MAX_RATIONALE or len(proposed) > positions.MAX_BODY:
        raise DomainError(str(_l("The text is too long.")), field="text")
    if insertion and not proposed:
        raise DomainError(str(_l("Write the new paragraph.")), field="text")
    return proposed, reason


def _snapshot(contribution: Contribution) -> dict[str, object]:
    return {
        "position": contribution.position_id,
        "version": contribution.version_id,
        "kind": contribution.kind.value,
        "paragraph": contribution.paragraph_anchor,
        "end": contribution.end_anchor,
        "insert_after": contribution.insert_after_anchor,
        "text": contribution.text,
        "rationale": contribution.rationale,
    }


def prepare_contribution(
    version: Version,
    process: Process,
    *,
    actor: User,
    organisation: Organisation,
    kind: ContributionKind | str,
    text: str,
    rationale: str = "",
    paragraph_anchor: str | None = None,
    end_anchor: str | None = None,
    insert_after_anchor: str | None = None,
) -> Contribution:
    """An official starts a contribution of their organisation in its own space: seen only
    by the organisation until it is cleared and submitted."""
    kind = ContributionKind(kind)
    _require(drafting_rules.may_prepare(actor, process, organisation, kind))
    _, target = positions.round_version(process, version.position)
    if target is None or target.id != version.id:
        raise DomainError(str(_l("In this round, input goes to the version it is about.")))
    if kind == ContributionKind.AMENDMENT:
        if (paragraph_anchor is None) == (insert_after_anchor is None):
            raise DomainError(str(_l("Choose a paragraph.")), field="paragraph")
        positions._range(version, paragraph_anchor or insert_after_anchor or "", end_anchor)
        if insert_after_anchor is not None:
            end_anchor = None
    else:
        insert_after_anchor = None
        end_anchor = None
        if paragraph_anchor and version.paragraph(paragraph_anchor) is None:
            raise DomainError(str(_l("This paragraph is not in this version.")))
    body, reason = _clean_contribution(
        kind, text, rationale, insertion=insert_after_anchor is not None
    )
    now = utcnow()
    contribution = Contribution(
        position_id=version.position_id,
        version_id=version.id,
        organisation_id=organisation.id,
        kind=kind,
        paragraph_anchor=paragraph_anchor or None,
        end_anchor=end_anchor if end_anchor != paragraph_anchor else None,
        insert_after_anchor=insert_after_anchor,
        text=body,
        rationale=reason,
        created_by_id=actor.id,
        updated_by_id=actor.id,
        created_at=now,
        updated_at=now,
    )
    contribution.organisation = organisation
    db.session.add(contribution)
    db.session.flush()
    audit.record(
        "contribution.drafted",
        actor=actor,
        object_type="contribution",
        object_id=contribution.id,
        organisation_id=organisation.id,
        payload=_snapshot(contribution),
    )
    return contribution


def edit_contribution(
    contribution: Contribution, process: Process, *, actor: User, text: str, rationale: str = ""
) -> None:
    """A colleague changes the draft; a cleared text that changes needs clearing again."""
    if contribution.state not in {ContributionState.DRAFT, ContributionState.CLEARED}:
        raise DomainError(str(_l("This contribution can no longer change.")))
    _require(
        drafting_rules.may_prepare(actor, process, contribution.organisation, contribution.kind)
    )
    body, reason = _clean_contribution(
        contribution.kind, text, rationale, insertion=contribution.is_insertion
    )
    if (body, reason) == (contribution.text, contribution.rationale):
        return
    before = {"text": contribution.text, "rationale": contribution.rationale}
    contribution.text, contribution.rationale = body, reason
    contribution.updated_by_id = actor.id
    contribution.updated_at = utcnow()
    uncleared = contribution.state == ContributionState.CLEARED
    if uncleared:
        contribution.state = ContributionState.DRAFT
        contribution.cleared_by_id = None
        contribution.cleared_at = None
    audit.record(
        "contribution.edited",
        actor=actor,
        object_type="contribution",
        object_id=contribution.id,
        organisation_id=contribution.organisation_id,
        payload={
            "before": before,
            "text": body,
            "rationale": reason,
            "clearance_lifted": uncleared,
        },
    )
    db.session.flush()


def add_note(
    contribution: Contribution, process: Process, *, actor: User, body: str
) -> ContributionNote:
    """An internal comment on a contribution in preparation (only the organisation sees it)."""
    if not drafting_rules.may_see_space(actor, contribution.organisation):
        raise Forbidden(str(_l("Only your organisation's officials work on this.")))
    if contribution.state in {ContributionState.SUBMITTED, ContributionState.DISCARDED}:
        raise DomainError(str(_l("This contribution can no longer change.")))
    text = require_visible(canonicalise(body).strip(), field="body")
    if not text:
        raise DomainError(str(_l("Write a comment.")), field="body")
    if len(text) > positions.MAX_COMMENT:
        raise DomainError(str(_l("The comment is too long.")), field="body")
    note = ContributionNote(contribution_id=contribution.id, author_id=actor.id, body=text)
    note.author = actor
    contribution.notes.append(note)
    db.session.flush()
    audit.record(
        "contribution.noted",
        actor=actor,
        object_type="contribution",
        object_id=contribution.id,
        organisation_id=contribution.organisation_id,
        payload={"note": note.id, "body": text},
    )
    return note


def clear_contribution(contribution: Contribution, process: Process, *, actor: User) -> None:
    """An officer of the organisation clears exactly this text (four eyes: not its writer)."""
    _require(drafting_rules.may_clear(actor, contribution, process))
    contribution.state = ContributionState.CLEARED
    contribution.cleared_by_id = actor.id
    contribution.cleared_at = utcnow()
    audit.record(
        "contribution.cleared",
        actor=actor,
        object_type="contribution",
        object_id=contribution.id,
        organisation_id=contribution.organisation_id,
        payload={"text": contribution.text, "rationale": contribution.rationale},
    )
    db.session.flush()


def submit_contribution(
    contribution: Contribution, process: Process, *, actor: User
) -> Amendment | Comment:
    """The cleared contribution becomes the organisation's amendment or comment, once. It
    is shown as from the organisation (no person as its author); who drafted, changed,
    cleared and submitted it is in the audit trail and on the contribution."""
    _require(drafting_rules.may_submit(actor, contribution, process))
    version = db.session.get(Version, contribution.version_id)
    assert version is not None
    result: Amendment | Comment
    if contribution.kind == ContributionKind.AMENDMENT:
        result = positions.propose_amendment(
            version,
            process,
            actor=actor,
            organisation=contribution.organisation,
            proposed_text=contribution.text,
            rationale=contribution.rationale,
            paragraph_anchor=contribution.paragraph_anchor,
            end_anchor=contribution.end_anchor,
            insert_after_anchor=contribution.insert_after_anchor,
            as_organisation=True,
        )
        result.author_id = None
        result.author = None
        contribution.amendment_id = result.id
    else:
        result = positions.add_comment(
            version,
            process,
            actor=actor,
            body=contribution.text,
            organisation=contribution.organisation,
            paragraph_anchor=contribution.paragraph_anchor,
            as_organisation=True,
        )
        result.author_id = None
        result.author = None
        result.author_role = ORGANISATION_ROLE
        contribution.comment_id = result.id
    contribution.state = ContributionState.SUBMITTED
    contribution.submitted_by_id = actor.id
    contribution.submitted_at = utcnow()
    drafters = sorted(
        {i for i in (contribution.created_by_id, contribution.updated_by_id) if i}
        | {n.author_id for n in contribution.notes if n.author_id}
    )
    audit.record(
        "contribution.submitted",
        actor=actor,
        object_type="contribution",
        object_id=contribution.id,
        organisation_id=contribution.organisation_id,
        payload={
            **_snapshot(contribution),
            "drafted_by": drafters,
            "cleared_by": contribution.cleared_by_id,
            "amendment": contribution.amendment_id,
            "comment": contribution.comment_id,
        },
    )
    db.session.flush()
    return result


def discard_contribution(contribution: Contribution, process: Process, *, actor: User) -> None:
    """The organisation drops a contribution it has not submitted."""
    if not drafting_rules.may_see_space(actor, contribution.organisation):
        raise Forbidden(str(_l("Only your organisation's officials work on this.")))
    if contribution.state in {ContributionState.SUBMITTED, ContributionState.DISCARDED}:
        raise DomainError(str(_l("This contribution can no longer change.")))
    contribution.state = ContributionState.DISCARDED
    audit.record(
        "contribution.discarded",
        actor=actor,
        object_type="contribution",
        object_id=contribution.id,
        organisation_id=contribution.organisation_id,
        payload={},
    )
    db.session.flush()


def contributions_of(position_id: int, organisation_id: int) -> list[Contribution]:
    """An organisation's contributions to a position, newest first (its space)."""
    return list(
        db.session.execute(
            select(Contribution)
            .where(
                Contribution.position_id == position_id,
                Contribution.organisation_id == organisation_id,
            )
            .order_by(Contribution.id.desc())
        )
        .unique()
        .scalars()
    )


def organisation_contribution_ids(position_id: int) -> set[int]:
    """Amendments of a position that were submitted as an organisation's contribution."""
    return set(
        db.session.execute(
            select(Contribution.amendment_id).where(
                Contribution.position_id == position_id, Contribution.amendment_id.is_not(None)
            )
        ).scalars()
    )


# --- Feedback on the disposition before publication ------------------------------------------

DECIDED = (AmendmentState.ACCEPTED, AmendmentState.ACCEPTED_IN_PART, AmendmentState.REJECTED)


def review_of(round_id: int) -> DispositionReview | None:
    return db.session.execute(
        select(DispositionReview).where(DispositionReview.round_id == round_id)
    ).scalar_one_or_none()


def review_phase(review: DispositionReview | None, at: datetime | None = None) -> str:
    """ "none" (no feedback asked: the report is as it always was), "feedback" (the
    organisations answer), "waiting" (answers closed, not yet published) or "published"."""
    if review is None:
        return "none"
    moment = at or utcnow()
    if moment < review.respond_by:
        return "feedback"
    if moment < review.publish_at:
        return "waiting"
    return "published"


def send_disposition(
    process: Process,
    round_: Round,
    *,
    actor: User,
    respond_by: datetime,
    publish_at: datetime,
) -> DispositionReview:
    """The facilitator sends the proposed disposition — each decision and its reason — to
    every organisation that proposed amendments in the round; they agree or contest until
    `respond_by`; the report is published at `publish_at`. Every amendment must be decided
    (or withdrawn) first, and a round's disposition is sent once."""
    if not permissions.can_manage_process(actor, process):
        raise Forbidden(str(_l("Only a facilitator of this process can do this.")))
    if round_.state != RoundState.CLOSED:
        raise DomainError(str(_l("Send the disposition once the round has closed.")))
    if review_of(round_.id) is not None:
        raise Conflict(str(_l("The disposition of this round has already been sent.")))
    now = utcnow()
    if respond_by <= now:
        raise DomainError(
            str(_l("The end of the feedback period must be in the future.")), field="respond_by"
        )
    if publish_at < respond_by:
        raise DomainError(
            str(_l("Publication comes after the feedback period.")), field="publish_at"
        )
    amendments = list(
        db.session.execute(
            select(Amendment).where(Amendment.round_id == round_.id).order_by(Amendment.number)
        ).scalars()
    )
    pending = [a.number for a in amendments if a.state == AmendmentState.PENDING]
    if pending:
        raise DomainError(
            str(
                _l(
                    "Decide every amendment first (still open: %(numbers)s).",
                    numbers=", ".join(map(str, pending)),
                )
            )
        )
    review = DispositionReview(
        round_id=round_.id,
        sent_by_id=actor.id,
        sent_at=now,
        respond_by=respond_by,
        publish_at=publish_at,
    )
    review.items = [
        DispositionFeedback(
            amendment_id=a.id,
            organisation_id=a.organisation_id,
            proposed_state=a.state.value,
            proposed_reason=a.decision_reason or "",
        )
        for a in amendments
        if a.state in DECIDED
    ]
    db.session.add(review)
    db.session.flush()
    audit.record(
        "disposition.sent",
        actor=actor,
        object_type="round",
        object_id=round_.id,
        payload={
            "respond_by": respond_by.isoformat(),
            "publish_at": publish_at.isoformat(),
            "items": [
                {
                    "amendment": i.amendment_id,
                    "state": i.proposed_state,
                    "reason": i.proposed_reason,
                }
                for i in review.items
            ],
        },
    )
    # The contributing organisations' people hear of it (consensus.notifications.triggers).
    events.record(events.DispositionSent(round_id=round_.id, process_id=process.id))
    return review


def respond_to_disposition(
    item: DispositionFeedback,
    process: Process,
    *,
    actor: User,
    response: FeedbackResponse | str,
    comment: str = "",
) -> None:
    """An official or representative of the organisation agrees with the proposed decision
    on its amendment, or contests it with a comment; changeable until the period ends."""
    organisation = db.session.get(Organisation, item.organisation_id)
    assert organisation is not None
    if not drafting_rules.may_see_space(actor, organisation):
        raise Forbidden(str(_l("Only your organisation's officials work on this.")))
    review = db.session.get(DispositionReview, item.review_id)
    assert review is not None
    if review_phase(review) != "feedback":
        raise DomainError(str(_l("The feedback period has ended.")))
    try:
        answer = FeedbackResponse(response)
    except ValueError:
        raise DomainError(str(_l("Choose whether you agree.")), field="response") from None
    text = visible_line(comment, field="comment")
    if answer == FeedbackResponse.CONTEST and not text:
        raise DomainError(str(_l("Say why you contest this decision.")), field="comment")
    if len(text) > positions.MAX_COMMENT:
        raise DomainError(str(_l("The comment is too long.")), field="comment")
    item.response = answer
    item.comment = text
    item.responded_by_id = actor.id
    item.responded_at = utcnow()
    audit.record(
        "disposition.feedback",
        actor=actor,
        object_type="amendment",
        object_id=item.amendment_id,
        organisation_id=item.organisation_id,
        payload={"round": review.round_id, "response": answer.value, "comment": text},
    )
    db.session.flush()


def waiting_organisations(review: DispositionReview) -> list[int]:
    """The organisations that have not yet answered every proposed decision sent to them."""
    return sorted({i.organisation_id for i in review.items if i.response is None})


def announce_published_dispositions(now: datetime | None = None) -> int:
    """The clock (`rounds tick`): every disposition report whose publication time has come
    is announced once (audit entry, DispositionPublished: the contributing organisations
    hear of it). The report itself is public by its time alone (review_phase); this only
    says so. Returns the number announced."""
    now = now or utcnow()
    due = (
        db.session.execute(
            select(DispositionReview)
            .where(DispositionReview.publish_at <= now, DispositionReview.announced_at.is_(None))
            .order_by(DispositionReview.id)
            .with_for_update(of=DispositionReview)
        )
        .scalars()
        .all()
    )
    for review in due:
        review.announced_at = now
        round_ = db.session.get(Round, review.round_id)
        assert round_ is not None  # noqa: S101 - a review belongs to a round
        answers = [i.response for i in review.items]
        audit.record(
            "disposition.published",
            actor=None,
            object_type="round",
            object_id=round_.id,
            payload={
                "publish_at": review.publish_at.isoformat(),
                "agreed": answers.count(FeedbackResponse.AGREE),
                "contested": answers.count(FeedbackResponse.CONTEST),
                "unanswered": answers.count(None),
            },
        )
        events.record(events.DispositionPublished(round_id=round_.id, process_id=round_.process_id))
    db.session.flush()
    return len(due)
