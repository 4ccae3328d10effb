"""Remote signing through the Cloud Signature Consortium API (CSC v1), per organisation.

An administrator connects the organisation's trust service provider: the service's base
URL, the access token the provider issued to the organisation (sealed with the KEK, never
shown again) and the credential id of the signer's certificate and key at the provider.
When the organisation signs, the platform sends only the hash of the signed attributes
(`signatures/signHash`); the provider authorises (`credentials/authorize`) and returns
the raw signature, which pyHanko embeds as an incremental PAdES signature like the
others. The statement (SSHSIG) is still made as the organisation's custody says.

Who authorises is the provider's call, announced per credential in `credentials/info`:
`authMode` "implicit" (the organisation's token suffices), or "explicit": the signer
authorises this one signature with the PIN and/or one-time code of their credential,
typed on our signing page and passed straight into `credentials/authorize` (never
stored, logged or audited: `SignerAuthorisation` hides them from repr). "oauth2code"
(the signer authorises on the provider's own page) is refused with a clear message.
"""

from __future__ import annotations

import asyncio
import io
import tempfile
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import lazy_gettext as _l

from consensus import audit, permissions
from consensus.crypto.keystore import KeystoreError, seal, unseal
from consensus.extensions import db
from consensus.models import Organisation, SigningSettings, User, utcnow
from consensus.services.errors import DomainError, Forbidden
from consensus.signing import documents
from consensus.signing.keys import DEFAULT_CUSTODY, _kek

CSC_TIMEOUT = 30


@dataclass(frozen=True)
class CscAccess:
    service_url: str
    credential_id: str
    token: str


@dataclass(frozen=True)
class SignerAuthorisation:
    """What the signer typed for their provider: sent only in credentials/authorize."""

    pin: str = field(default="", repr=False)
    otp: str = field(default="", repr=False)

    def __bool__(self) -> bool:
        return bool(self.pin or self.otp)


@dataclass(frozen=True)
class ProviderDemands:
    """What a credential's `credentials/info` says the signer must give (CSC v1 §11.5)."""

    auth_mode: str
    pin: bool
    otp: bool
    otp_type: str

    @classmethod
    def from_info(cls, data: dict) -> ProviderDemands:  # type: ignore[type-arg]
        pin = data.get("PIN") if isinstance(data.get("PIN"), dict) else {}
        otp = data.get("OTP") if isinstance(data.get("OTP"), dict) else {}
        return cls(
            auth_mode=str(data.get("authMode") or "implicit"),
            pin=str(pin.get("presence", "false")) == "true",
            otp=str(otp.get("presence", "false")) == "true",
            otp_type=str(otp.get("type") or "offline"),
        )


def _token_associated_data(organisation_id: int) -> bytes:
    return f"csc-token:{organisation_id}".encode()


def csc_settings(organisation: Organisation) -> SigningSettings | None:
    settings = db.session.get(SigningSettings, organisation.id)
    return settings if settings is not None and settings.csc_enabled else None


def _check_url(url: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    loopback = parts.hostname in {"127.0.0.1", "localhost", "::1"}
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise DomainError(
            str(_l("The service address must start with https://.")), field="service_url"
        )
    if not parts.hostname:
        raise DomainError(str(_l("This is not a web address.")), field="service_url")
    return url


def set_csc(
    organisation: Organisation,
    *,
    actor: User,
    enabled: bool,
    service_url: str = "",
    credential_id: str = "",
    token: str = "",
) -> SigningSettings:
    """Connect (or disconnect) the organisation's remote signing service. A blank token
    keeps the one stored before."""
    if not permissions.can_administer(actor):
        raise Forbidden(str(_l("Only an administrator may do this.")))
    settings = db.session.get(SigningSettings, organisation.id)
    if settings is None:
        settings = SigningSettings(organisation_id=organisation.id, custody=DEFAULT_CUSTODY)
        db.session.add(settings)
    if enabled:
        url = _check_url(service_url)
        credential_id = credential_id.strip()
        if not credential_id or len(credential_id) > 300:
            raise DomainError(
                str(_l("Give the credential id the provider gave the signer.")),
                field="credential_id",
            )
        if not token.strip() and not settings.csc_sealed_token:
            raise DomainError(str(_l("Give the access token the provider issued.")), field="token")
        settings.csc_service_url = url
        settings.csc_credential_id = credential_id
        if token.strip():
            settings.csc_sealed_token = seal(
                _kek(), token.strip().encode(), _token_associated_data(organisation.id)
            )
    settings.csc_enabled = enabled
    settings.updated_at = utcnow()
    settings.updated_by_id = actor.id
    db.session.flush()
    audit.record(
        "signing.remote_set",
        actor=actor,
        object_type="organisation",
        object_id=organisation.id,
        organisation_id=organisation.id,
        # never the token
        payload={
            "enabled": enabled,
            "service_url": settings.csc_service_url,
            "credential_id": settings.csc_credential_id,
            "token_changed": bool(token.strip()),
        },
    )
    return settings


def access_for(organisation: Organisation) -> CscAccess | None:
    settings = csc_settings(organisation)
    if settings is None:
        return None
    try:
        token = unseal(
            _kek(), settings.csc_sealed_token or "", _token_associated_data(organisation.id)
        ).decode()
    except KeystoreError as error:
        raise DomainError(
            str(_l("The platform cannot open this organisation's access token."))
        ) from error
    return CscAccess(settings.csc_service_url, settings.csc_credential_id, token)


class RemoteSigningFailed(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        # "unreachable" | "refused" (the organisation's token) | "refused_signer" (the
        # signer's PIN or code) | "needs_signer" | "oauth2" | "online_otp"
        self.kind = kind


class SignerMustAuthorise(DomainError):
    """The provider wants the signer's own PIN or code, and none was given (for example
    when another organisation's withdrawal would re-sign this signature)."""


def sign_pdf_remotely(
    pdf: bytes,
    *,
    access: CscAccess,
    field_name: str,
    box: tuple[int, float, float, float, float] | None,
    stamp: documents.StampText,
    reason: str,
    location: str,
    timestamper: object | None,
    validation_context: object | None,
    authorisation: SignerAuthorisation | None = None,
) -> bytes:
    """Like documents.sign_pdf, with the key at the CSC provider: only the hash leaves."""
    # The stamp is laid out here, in the app context (the signing may run in a worker
    # thread when this thread already runs an event loop).
    stamp_pdf = documents.render_stamp(stamp, box[3] - box[1], box[4] - box[2]) if box else b""
    return documents._without_event_loop(
        lambda: asyncio.run(
            _sign_remotely(
                pdf,
                access,
                field_name,
                box,
                stamp,
                stamp_pdf,
                reason,
                location,
                timestamper,
                validation_context,
                authorisation or SignerAuthorisation(),
            )
        )
    )


async def _sign_remotely(
    pdf: bytes,
    access: CscAccess,
    field_name: str,
    box: tuple[int, float, float, float, float] | None,
    stamp: documents.StampText,
    stamp_pdf: bytes,
    reason: str,
    location: str,
    timestamper: object | None,
    validation_context: object | None,
    authorisation: SignerAuthorisation,
) -> bytes:
    import aiohttp
    from pyhanko.pdf_utils.content import ImportedPdfPage
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign._session_scope import run_and_release
    from pyhanko.sign.general import SigningError
    from pyhanko.sign.signers import csc_signer
    from pyhanko.stamp import StaticStampStyle

    session_info = csc_signer.CSCServiceSessionInfo(
        service_url=access.service_url,
        credential_id=access.credential_id,
        oauth_token=access.token,
    )
    timeout = aiohttp.ClientTimeout(total=CSC_TIMEOUT)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            info = await csc_signer.fetch_certs_in_csc_credential(
                session, session_info, timeout=CSC_TIMEOUT
            )
            demands = ProviderDemands.from_info(info.response_data)
            _check_demands(demands, authorisation)
            signer = csc_signer.CSCSigner(
                session,
                auth_manager=_TokenAuthorization(
                    session, session_info, info, demands, authorisation
                ),
            )
            meta = signers.PdfSignatureMetadata(
                field_name=field_name,
                name=stamp.signer_name,
                reason=reason,
                location=location,
                subfilter=fields.SigSeedSubFilter.PADES,
                embed_validation_info=validation_context is not None,
                validation_context=validation_context,  # type: ignore[arg-type]
            )
            writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
            output = io.BytesIO()
            with tempfile.NamedTemporaryFile(suffix=".pdf") as handle:
                spec = fields.SigFieldSpec(field_name)
                style = None
                if box is not None:
                    page, x1, y1, x2, y2 = box
                    handle.write(stamp_pdf)
                    handle.flush()
                    style = StaticStampStyle(
                        background=ImportedPdfPage(handle.name), border_width=0
                    )
                    spec = fields.SigFieldSpec(field_name, on_page=page, box=(x1, y1, x2, y2))
                pdf_signer = signers.PdfSigner(
                    meta,
                    signer,
                    timestamper=timestamper,  # type: ignore[arg-type]
                    stamp_style=style,
                    new_field_spec=spec,
                )
                await run_and_release(
                    pdf_signer.async_sign_pdf(writer, output=output),
                    validation_context,  # type: ignore[arg-type]
                )
            return output.getvalue()
    except _Refused as error:
        kind = "refused_signer" if error.by_signer else "refused"
        raise RemoteSigningFailed(kind, str(error)) from error
    except (TimeoutError, aiohttp.ClientError, OSError) as error:
        raise RemoteSigningFailed("unreachable", str(error)) from error
    except SigningError as error:
        cause = error.__cause__
        if isinstance(cause, _Refused):
            kind = "refused_signer" if cause.by_signer else "refused"
            raise RemoteSigningFailed(kind, str(cause)) from error
        if isinstance(cause, aiohttp.ClientResponseError) and cause.status in {401, 403}:
            raise RemoteSigningFailed("refused", str(cause)) from error
        if isinstance(cause, aiohttp.ClientError | OSError | asyncio.TimeoutError):
            raise RemoteSigningFailed("unreachable", str(cause)) from error
        raise


class _Refused(Exception):
    def __init__(self, detail: str, *, by_signer: bool = False) -> None:
        super().__init__(detail)
        self.by_signer = by_signer


def _check_demands(demands: ProviderDemands, given: SignerAuthorisation) -> None:
    if demands.auth_mode == "oauth2code":
        raise RemoteSigningFailed("oauth2", "the provider wants an OAuth2 authorisation")
    if demands.auth_mode != "explicit":
        return
    if demands.otp and demands.otp_type == "online" and not given.otp:
        raise RemoteSigningFailed("online_otp", "the provider sends its code on request")
    if (demands.pin and not given.pin) or (demands.otp and not given.otp):
        raise RemoteSigningFailed("needs_signer", "the provider wants the signer's PIN or code")


class _TokenAuthorization:
    """credentials/authorize with the organisation's access token, one signature at a
    time, bound to the hash about to be signed (SCAL 2 when the provider wants it); with
    the signer's PIN and/or one-time code when the provider's authMode is "explicit"."""

    def __new__(cls, session, session_info, info, demands, authorisation):  # type: ignore[no-untyped-def]
        from pyhanko.sign.signers import csc_signer

        class Manager(csc_signer.CSCAuthorizationManager):
            async def authorize_signature(self, hash_b64s: list[str]):  # type: ignore[no-untyped-def]
                import aiohttp

                explicit = demands.auth_mode == "explicit"
                request = self.format_csc_auth_request(
                    pin=authorisation.pin if explicit and authorisation.pin else None,
                    otp=authorisation.otp if explicit and authorisation.otp else None,
                    hash_b64s=hash_b64s,
                    description="Consensus: medeondertekening van de gezamenlijke brief",
                )
                async with session.post(
                    self.csc_session_info.endpoint_url("credentials/authorize"),
                    headers=self.csc_session_info.auth_headers,
                    json=request,
                ) as response:
                    # Never the request in a message: it holds the PIN.
                    if response.status in {400, 401, 403} and explicit:
                        raise _Refused(f"authorisation refused ({response.status})", by_signer=True)
                    if response.status in {401, 403}:
                        raise _Refused(f"authorisation refused ({response.status})")
                    try:
                        response.raise_for_status()
                    except aiohttp.ClientResponseError as error:
                        raise _Refused(f"authorisation refused ({error.status})") from error
                    return self.parse_csc_auth_response(await response.json())

        return Manager(session_info, info)


def explain(error: RemoteSigningFailed, organisation_name: str) -> DomainError:
    current_app.logger.warning("remote signing failed (%s): %s", error.kind, error)
    if error.kind == "needs_signer":
        return SignerMustAuthorise(
            str(
                _l(
                    "The signing service of %(org)s asks the signer to authorise this "
                    "signature: give the PIN of your credential at the signing service (and "
                    "its one-time code, if it uses one). Nothing was signed.",
                    org=organisation_name,
                )
            ),
            field="csc_pin",
        )
    if error.kind == "refused_signer":
        return DomainError(
            str(
                _l(
                    "The signing service of %(org)s refused the authorisation: the PIN or the "
                    "one-time code was not accepted. Nothing was signed; try again.",
                    org=organisation_name,
                )
            ),
            field="csc_pin",
        )
    if error.kind == "oauth2":
        return DomainError(
            str(
                _l(
                    "The signing service of %(org)s wants the signer to authorise on its own "
                    "web page (OAuth2), which this platform does not support yet. Nothing was "
                    "signed; ask the administrator about the credential's settings.",
                    org=organisation_name,
                )
            )
        )
    if error.kind == "online_otp":
        return DomainError(
            str(
                _l(
                    "The signing service of %(org)s sends a one-time code on request, which "
                    "this platform cannot ask for yet. Nothing was signed.",
                    org=organisation_name,
                )
            )
        )
    if error.kind == "refused":
        return DomainError(
            str(
                _l(
                    "The signing service of %(org)s refused the authorisation, so nothing was "
                    "signed. Check the credential and the access token, or authorise again.",
                    org=organisation_name,
                )
            )
        )
    return DomainError(
        str(
            _l(
                "The signing service of %(org)s could not be reached, so nothing was signed. "
                "Try again later.",
                org=organisation_name,
            )
        )
    )
