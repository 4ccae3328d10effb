"""The API's resources as marshmallow schemas: the OpenAPI document and the request
validation are derived from these (flask-smorest, apispec). JSON property names are
camelCase; times are ISO 8601 with offset (UTC)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from consensus.models import AmendmentState, ClearanceDecision, StanceKind
from consensus.services.organisations import SLUG_RE


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


class ApiSchema(Schema):
    """snake_case attributes in Python, camelCase in JSON (the data key)."""

    def on_bind_field(self, field_name: str, field_obj: fields.Field) -> None:
        if not field_name.startswith("_"):
            field_obj.data_key = _camel(field_obj.data_key or field_name)


class InvalidParamSchema(ApiSchema):
    name = fields.String(required=True)
    reason = fields.String(required=True)


class ProblemSchema(ApiSchema):
    """application/problem+json (RFC 9457)."""

    type = fields.String(required=True, metadata={"example": "about:blank"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String()
    instance = fields.String()
    invalid_params = fields.List(fields.Nested(InvalidParamSchema))


class LinkSchema(ApiSchema):
    href = fields.String(required=True)


class LinksSchema(ApiSchema):
    self = fields.Nested(LinkSchema, required=True)
    first = fields.Nested(LinkSchema)
    prev = fields.Nested(LinkSchema)
    next = fields.Nested(LinkSchema)
    last = fields.Nested(LinkSchema)


class PageArgsSchema(ApiSchema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    page_size = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


def page_of(item: type[Schema], name: str) -> type[Schema]:
    """A page of `item`s with its links (self, first, prev, next, last) and the total."""
    return type(
        f"{name}PageSchema",
        (ApiSchema,),
        {
            "items": fields.List(fields.Nested(item), required=True),
            "total": fields.Integer(required=True),
            "page": fields.Integer(required=True),
            "page_size": fields.Integer(required=True),
            "_links": fields.Nested(LinksSchema, required=True, data_key="_links"),
        },
    )


# --- Processes ---------------------------------------------------------------------------------


class OrganisationSchema(ApiSchema):
    slug = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True)


class RoundSchema(ApiSchema):
    id = fields.Integer(required=True)
    sequence = fields.Integer(required=True)
    type = fields.String(required=True)
    title = fields.String(required=True)
    state = fields.String(required=True)
    opens_at = fields.DateTime(required=True)
    closes_at = fields.DateTime(required=True)
    opened_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    version_id = fields.Integer(allow_none=True)


class RuleSchema(ApiSchema):
    rule = fields.String(required=True)
    quorum = fields.Integer(required=True)
    qualified_share_percent = fields.Integer(allow_none=True)
    hide_tally_until_closed = fields.Boolean(required=True)
    require_clearance = fields.Boolean(required=True)


class PositionRefSchema(ApiSchema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)


class ProcessSummarySchema(ApiSchema):
    slug = fields.String(required=True)
    title = fields.String(required=True)
    state = fields.String(required=True)
    visibility = fields.String(required=True)
    published_at = fields.DateTime(allow_none=True)
    _links = fields.Dict(keys=fields.String(), values=fields.Nested(LinkSchema), data_key="_links")


class ProcessSchema(ProcessSummarySchema):
    purpose = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    concluded_at = fields.DateTime(allow_none=True)
    themes = fields.List(fields.String(), required=True)
    rule = fields.Nested(RuleSchema, required=True)
    participants = fields.List(fields.Nested(OrganisationSchema), required=True)
    facilitators = fields.List(fields.String(), required=True)
    rounds = fields.List(fields.Nested(RoundSchema), required=True)
    positions = fields.List(fields.Nested(PositionRefSchema), required=True)


# --- Positions, versions, comments, amendments --------------------------------------------------


class VersionSummarySchema(ApiSchema):
    id = fields.Integer(required=True)
    number = fields.Integer(required=True)
    sha256 = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    change_summary = fields.String(required=True)


class ParagraphSchema(ApiSchema):
    anchor = fields.String(required=True)
    text = fields.String(required=True)


class VersionSchema(VersionSummarySchema):
    position_id = fields.Integer(required=True)
    text = fields.String(required=True, metadata={"description": "The canonical Markdown."})
    paragraphs = fields.List(fields.Nested(ParagraphSchema), required=True)
    _links = fields.Dict(keys=fields.String(), values=fields.Nested(LinkSchema), data_key="_links")


class PositionSchema(ApiSchema):
    id = fields.Integer(required=True)
    title = fields.String(required=True)
    subject = fields.String(required=True)
    addressee = fields.String(required=True)
    place = fields.String(required=True)
    letter_date = fields.Date(allow_none=True)
    reference = fields.String(required=True)
    created_at = fields.DateTime(required=True)
    versions = fields.List(fields.Nested(VersionSummarySchema), required=True)


class CommentSchema(ApiSchema):
    id = fields.Integer(required=True)
    version_number = fields.Integer(required=True)
    paragraph_anchor = fields.String(allow_none=True)
    parent_id = fields.Integer(allow_none=True)
    round_id = fields.Integer(allow_none=True)
    author = fields.String(allow_none=True)
    organisation = fields.String(allow_none=True, metadata={"description": "slug"})
    author_role = fields.String(required=True)
    body = fields.String(allow_none=True, metadata={"description": "null once removed"})
    created_at = fields.DateTime(required=True)
    edited_at = fields.DateTime(allow_none=True)
    deleted_at = fields.DateTime(allow_none=True)


class AmendmentSchema(ApiSchema):
    number = fields.Integer(required=True)
    version_number = fields.Integer(required=True)
    round_id = fields.Integer(allow_none=True)
    organisation = fields.String(required=True, metadata={"description": "slug"})
    author = fields.String(allow_none=True)
    paragraph_anchor = fields.String(allow_none=True)
    end_anchor = fields.String(allow_none=True)
    insert_after_anchor = fields.String(allow_none=True)
    original_text = fields.String(required=True)
    proposed_text = fields.String(required=True)
    rationale = fields.String(required=True)
    state = fields.String(required=True)
    adopted_text = fields.String(allow_none=True)
    decision_reason = fields.String(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    withdrawn_at = fields.DateTime(allow_none=True)
    created_at = fields.DateTime(required=True)


# Text may hold anything a person can type, never NUL (no database stores it).
_NO_NUL = validate.Regexp(r"^[^\x00]*$", error="NUL is not allowed.")
_TEXT = [validate.Length(min=1, max=20000), _NO_NUL]
_SLUG = validate.Regexp(SLUG_RE, error="Not an organisation's short address.")
_ANCHOR = [validate.Length(min=1, max=40), _NO_NUL]


class CommentInputSchema(ApiSchema):
    body = fields.String(required=True, validate=_TEXT)
    organisation = fields.String(
        load_default=None,
        validate=_SLUG,
        metadata={"description": "The slug of the organisation you speak for."},
    )
    paragraph = fields.String(
        load_default=None,
        validate=validate.Length(min=1, max=40),
        metadata={"description": "anchor"},
    )
    parent_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**31 - 1))


class AmendmentInputSchema(ApiSchema):
    organisation = fields.String(required=True, validate=_SLUG)
    proposed_text = fields.String(required=True, validate=[validate.Length(max=100000), _NO_NUL])
    rationale = fields.String(required=True, validate=[validate.Length(min=1, max=5000), _NO_NUL])
    paragraph = fields.String(load_default=None, validate=_ANCHOR)
    end_paragraph = fields.String(load_default=None, validate=_ANCHOR)
    insert_after = fields.String(load_default=None, validate=_ANCHOR)


# --- Rounds: disposition, stances, clearance, outcome ----------------------------------------


class DispositionEntrySchema(ApiSchema):
    organisation = fields.Nested(OrganisationSchema, required=True)
    amendments = fields.List(fields.Nested(AmendmentSchema), required=True)
    comments = fields.List(fields.Nested(CommentSchema), required=True)


class DispositionSchema(ApiSchema):
    round = fields.Nested(RoundSchema, required=True)
    position_id = fields.Integer(allow_none=True)
    version_number = fields.Integer(allow_none=True)
    generated_at = fields.DateTime(required=True)
    totals = fields.Dict(keys=fields.String(), values=fields.Integer(), required=True)
    organisations = fields.List(fields.Nested(DispositionEntrySchema), required=True)


class StanceSchema(ApiSchema):
    id = fields.Integer(required=True)
    organisation = fields.String(required=True, metadata={"description": "slug"})
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in StanceKind]))
    text = fields.String(required=True)
    version_id = fields.Integer(required=True)
    counts = fields.Boolean(required=True, metadata={"description": "on the round's version"})
    cast_by = fields.String(required=True)
    cast_by_title = fields.String(required=True)
    substitute_for = fields.String(allow_none=True)
    cast_at = fields.DateTime(required=True)


class TallySchema(ApiSchema):
    participants = fields.Integer(required=True)
    endorsed = fields.Integer(required=True)
    with_reservations = fields.Integer(required=True)
    abstained = fields.Integer(required=True)
    objected = fields.Integer(required=True)
    no_response = fields.Integer(required=True)
    adopted = fields.Boolean(required=True, metadata={"description": "the rule is met (so far)"})
    reasons = fields.List(fields.String(), required=True)


class StancesSchema(ApiSchema):
    round = fields.Nested(RoundSchema, required=True)
    complete = fields.Boolean(
        required=True,
        metadata={
            "description": "false: the tally is hidden until the round closes; "
            "only your own organisations' stances are listed"
        },
    )
    tally = fields.Nested(TallySchema, allow_none=True)
    stances = fields.List(fields.Nested(StanceSchema), required=True)


class StanceInputSchema(ApiSchema):
    organisation = fields.String(required=True, validate=_SLUG)
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in StanceKind]))
    text = fields.String(load_default="", validate=[validate.Length(max=20000), _NO_NUL])


class ClearanceSchema(ApiSchema):
    id = fields.Integer(required=True)
    organisation = fields.String(required=True)
    decision = fields.String(required=True)
    remarks = fields.String(required=True)
    version_id = fields.Integer(required=True)
    cleared_by = fields.String(required=True)
    created_at = fields.DateTime(required=True)


class ClearancesSchema(ApiSchema):
    round = fields.Nested(RoundSchema, required=True)
    clearances = fields.List(fields.Nested(ClearanceSchema), required=True)


class ClearanceInputSchema(ApiSchema):
    organisation = fields.String(required=True, validate=_SLUG)
    decision = fields.String(
        required=True, validate=validate.OneOf([d.value for d in ClearanceDecision])
    )
    remarks = fields.String(load_default="", validate=[validate.Length(max=20000), _NO_NUL])


class OutcomeSchema(ApiSchema):
    round_id = fields.Integer(required=True)
    version_id = fields.Integer(allow_none=True)
    version_sha256 = fields.String(allow_none=True)
    decision_rule = fields.String(required=True)
    quorum = fields.Integer(required=True)
    qualified_share_percent = fields.Integer(allow_none=True)
    participants = fields.Integer(required=True)
    endorsed = fields.Integer(required=True)
    with_reservations = fields.Integer(required=True)
    abstained = fields.Integer(required=True)
    objected = fields.Integer(required=True)
    no_response = fields.Integer(required=True)
    adopted = fields.Boolean(required=True)
    reasons = fields.List(fields.String(), required=True)
    fixed_at = fields.DateTime(required=True)
    statement = fields.String(required=True)
    review_on = fields.Date(allow_none=True)


class OutcomesSchema(ApiSchema):
    outcomes = fields.List(fields.Nested(OutcomeSchema), required=True)


# --- Signatures and the audit trail ------------------------------------------------------------


class SignatureSchema(ApiSchema):
    id = fields.Integer(required=True)
    round_id = fields.Integer(required=True)
    organisation = fields.String(required=True)
    version_id = fields.Integer(required=True)
    signer = fields.String(required=True)
    signer_title = fields.String(required=True)
    custody = fields.String(required=True)
    key_fingerprint = fields.String(required=True)
    signed_at = fields.DateTime(required=True)
    verified = fields.Boolean(required=True)
    reason = fields.String(required=True, metadata={"description": "why not verified"})
    key_revoked = fields.Boolean(required=True)


class SignaturesSchema(ApiSchema):
    signatures = fields.List(fields.Nested(SignatureSchema), required=True)


class AuditEventSchema(ApiSchema):
    seq = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)
    action = fields.String(required=True)
    object_type = fields.String(required=True)
    object_id = fields.String(required=True)
    result = fields.String(required=True)
    _links = fields.Dict(keys=fields.String(), values=fields.Nested(LinkSchema), data_key="_links")


class ReceiptSchema(Schema):
    """The receipt as the pages give it (verify_audit.py reads it): snake_case, as is."""

    format = fields.String(required=True)
    origin = fields.String(required=True)
    seq = fields.Integer(required=True)
    leaf_index = fields.Integer(required=True)
    entry = fields.String(required=True)
    leaf_hash = fields.String(required=True)
    tree_size = fields.Integer(required=True)
    root_hash = fields.String(required=True)
    inclusion_proof = fields.List(fields.String(), required=True)
    checkpoint = fields.Dict(allow_none=True)
    namespace = fields.String(required=True)
    principal = fields.String(required=True)


# --- Who am I ---------------------------------------------------------------------------------


class MembershipSchema(ApiSchema):
    organisation = fields.Nested(OrganisationSchema, required=True)
    role = fields.String(required=True)
    holds_mandate = fields.Boolean(required=True)


class MeSchema(ApiSchema):
    name = fields.String(required=True)
    memberships = fields.List(fields.Nested(MembershipSchema), required=True)
    scopes = fields.List(fields.String(), required=True)
    token_expires_at = fields.DateTime(required=True)


def states(kind: Any) -> list[str]:
    return [member.value for member in kind]


__all__ = ["AmendmentState", "states"]


class OpenAmendmentSchema(AmendmentSchema):
    position_id = fields.Integer(required=True)


class OpenDataSchema(ApiSchema):
    process = fields.Nested(ProcessSchema, required=True)
    positions = fields.List(fields.Nested(PositionSchema), required=True)
    amendments = fields.List(fields.Nested(OpenAmendmentSchema), required=True)
    outcomes = fields.List(fields.Nested(OutcomeSchema), required=True)
    stances = fields.List(fields.Dict(), required=True)
    _links = fields.Dict(keys=fields.String(), values=fields.Nested(LinkSchema), data_key="_links")
