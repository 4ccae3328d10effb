"""A local public-key infrastructure for the signing tests: Certomancer (PyPI) serving a
timestamping authority (RFC 3161), its CRL and an OCSP responder (RFC 6960) on loopback,
and the files an operator would configure (the TSA's URL, a trust-anchor directory).

Signer certificates at the "provider" (used through the CSC dummy below):
- `signer`: an ordinary certificate (CRL distribution point only);
- `qualified-signer`: a qualified certificate for electronic signatures on a QSCD (QC
  statements QcCompliance, QcSSCD, QcType esign; ETSI EN 319 412-5), naming the OCSP
  responder (authority information access) and, as qualified providers do, a CRL;
- `revoked-signer`: qualified too, revoked in 2021, naming only the OCSP responder (so
  only OCSP can tell that it is revoked);
- `later-revoked-signer`: like `qualified-signer`, revoked from 2040 on (judged after that
  date with the responders' clock moved there: `LocalPki.set_clock`).

Why a CRL next to OCSP: pyHanko (0.38) drops the OCSP responses it holds when fetching a
fresh one fails, so an offline check of a certificate that names only an OCSP responder
fails however complete the letter's validation data; with the CRL in the letter too, the
bundle's commands confirm it offline.

Keys are generated per test session into a temporary directory; the Certomancer
configuration is written next to them with the loopback address as its URL prefix, so the
certificates' CRL distribution points lead to the running server.
"""

from __future__ import annotations

import socket
import threading
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ARCH = "consensus-test"
LABELS = (
    "root",
    "tsa",
    "signer",
    "ocsp",
    "qualified-signer",
    "revoked-signer",
    "later-revoked-signer",
)

CONFIG = """
external-url-prefix: "{prefix}"
keysets:
  {arch}:
    path-prefix: "{keys}"
    keys:
      root: {{path: root.key.pem}}
      tsa: {{path: tsa.key.pem}}
      signer: {{path: signer.key.pem}}
      ocsp: {{path: ocsp.key.pem}}
      qualified-signer: {{path: qualified-signer.key.pem}}
      revoked-signer: {{path: revoked-signer.key.pem}}
      later-revoked-signer: {{path: later-revoked-signer.key.pem}}
pki-architectures:
  {arch}:
    keyset: {arch}
    entity-defaults:
      country-name: NL
      organization-name: Testdienst Vertrouwen
    entities:
      root: {{common-name: Test Root CA}}
      tsa: {{common-name: Test Timestamping Authority}}
      signer: {{common-name: Gemeente Testdorp, organization-name: Gemeente Testdorp}}
      ocsp: {{common-name: Test OCSP Responder}}
      qualified-signer: {{common-name: Jan Jansen, organization-name: Gemeente Testdorp}}
      revoked-signer: {{common-name: Piet Ingetrokken, organization-name: Gemeente Testdorp}}
      later-revoked-signer: {{common-name: Karin Later, organization-name: Gemeente Testdorp}}
    certs:
      root:
        subject: root
        issuer: root
        validity: {{valid-from: "2020-01-01T00:00:00+0000", valid-to: "2060-01-01T00:00:00+0000"}}
        extensions:
          - id: basic_constraints
            critical: true
            value: {{ca: true}}
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature, key_cert_sign, crl_sign]}}
      tsa:
        subject: tsa
        issuer: root
        validity: {{valid-from: "2020-01-01T00:00:00+0000", valid-to: "2059-01-01T00:00:00+0000"}}
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature]}}
          - id: extended_key_usage
            critical: true
            value: [time_stamping]
          - id: crl_distribution_points
            smart-value: {{schema: crl-dist-url, params: {{crl-repo-names: [root]}}}}
      signer:
        subject: signer
        issuer: root
        validity: {{valid-from: "2020-01-01T00:00:00+0000", valid-to: "2059-01-01T00:00:00+0000"}}
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature, non_repudiation]}}
          - id: crl_distribution_points
            smart-value: {{schema: crl-dist-url, params: {{crl-repo-names: [root]}}}}
      qualified-signer:
        subject: qualified-signer
        issuer: root
        validity: {{valid-from: "2020-01-01T00:00:00+0000", valid-to: "2059-01-01T00:00:00+0000"}}
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature, non_repudiation]}}
          - id: authority_information_access
            smart-value: {{schema: aia-urls, params: {{ocsp-responder-names: [root]}}}}
          - id: crl_distribution_points
            smart-value: {{schema: crl-dist-url, params: {{crl-repo-names: [root]}}}}
          - id: qc_statements
            value:
              - {{statement_id: qc_compliance}}
              - {{statement_id: qc_sscd}}
              - {{statement_id: qc_type, statement_info: [qct_esign]}}
      revoked-signer:
        subject: revoked-signer
        issuer: root
        validity: {{valid-from: "2020-01-01T00:00:00+0000", valid-to: "2059-01-01T00:00:00+0000"}}
        revocation: {{revoked-since: "2021-01-01T00:00:00+0000", reason: key_compromise}}
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature, non_repudiation]}}
          - id: authority_information_access
            smart-value: {{schema: aia-urls, params: {{ocsp-responder-names: [root]}}}}
          - id: qc_statements
            value:
              - {{statement_id: qc_compliance}}
              - {{statement_id: qc_sscd}}
              - {{statement_id: qc_type, statement_info: [qct_esign]}}
      later-revoked-signer:
        subject: later-revoked-signer
        issuer: root
        validity: {{valid-from: "2020-01-01T00:00:00+0000", valid-to: "2059-01-01T00:00:00+0000"}}
        revocation: {{revoked-since: "2040-01-01T00:00:00+0000", reason: key_compromise}}
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature, non_repudiation]}}
          - id: authority_information_access
            smart-value: {{schema: aia-urls, params: {{ocsp-responder-names: [root]}}}}
          - id: crl_distribution_points
            smart-value: {{schema: crl-dist-url, params: {{crl-repo-names: [root]}}}}
          - id: qc_statements
            value:
              - {{statement_id: qc_compliance}}
              - {{statement_id: qc_sscd}}
              - {{statement_id: qc_type, statement_info: [qct_esign]}}
      ocsp:
        subject: ocsp
        issuer: root
        validity: {{valid-from: "2020-01-01T00:00:00+0000", valid-to: "2059-01-01T00:00:00+0000"}}
        extensions:
          - id: key_usage
            critical: true
            smart-value: {{schema: key-usage, params: [digital_signature]}}
          - id: extended_key_usage
            critical: true
            value: [ocsp_signing]
          - id: ocsp_no_check
    services:
      ocsp:
        root:
          for-issuer: root
          responder-cert: ocsp
          signing-key: ocsp
      crl-repo:
        root:
          for-issuer: root
          signing-key: root
          simulated-update-schedule: "P7D"
      time-stamping:
        tsa:
          signing-key: tsa
          signing-cert: tsa
"""


@dataclass
class LocalPki:
    folder: Path
    port: int
    config_path: Path
    server: object
    thread: threading.Thread
    animator: object = None

    def set_clock(self, moment: datetime | None) -> None:
        """The time the responders (OCSP, CRL, TSA) act at; None: the real clock."""
        self.animator.fixed_time = moment  # type: ignore[attr-defined]

    @property
    def ocsp_url(self) -> str:
        return f"{self.prefix}/{ARCH}/ocsp/root"

    @property
    def prefix(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tsa_url(self) -> str:
        return f"{self.prefix}/{ARCH}/tsa/tsa"

    @property
    def anchors_dir(self) -> Path:
        """What an operator puts in CONSENSUS_TRUST_ANCHORS: the root, as a file."""
        return self.folder / "anchors"

    def cert_pem(self, label: str) -> str:
        return (self.folder / "certs" / f"{label}.cert.pem").read_text()

    def stop(self) -> None:
        if self.thread.is_alive():
            self.server.shutdown()  # type: ignore[attr-defined]
            self.thread.join(5)


def _free_port() -> int:
    with socket.socket() as handle:
        handle.bind(("127.0.0.1", 0))
        return int(handle.getsockname()[1])


def start_local_pki(folder: Path) -> LocalPki:
    from certomancer.integrations.animator import Animator, AnimatorArchStore
    from certomancer.registry import CertomancerConfig
    from werkzeug.serving import make_server

    keys = folder / "keys"
    keys.mkdir(parents=True)
    # QcStatements known to asn1crypto (pyHanko registers it), so the YAML can say them.
    import pyhanko.sign.ades.qualified_asn1  # noqa: F401

    for name in LABELS:
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        (keys / f"{name}.key.pem").write_bytes(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    port = _free_port()
    config_path = folder / "certomancer.yml"
    config_path.write_text(
        CONFIG.format(prefix=f"http://127.0.0.1:{port}", arch=ARCH, keys=str(keys))
    )
    config = CertomancerConfig.from_file(str(config_path), key_search_dir=str(folder))
    arch = config.get_pki_arch(ARCH)
    certs = folder / "certs"
    certs.mkdir()
    for label in LABELS:
        cert = arch.get_cert(label)
        (certs / f"{label}.cert.pem").write_text(_pem(cert.dump()))
    anchors = folder / "anchors"
    anchors.mkdir()
    (anchors / "test-root.pem").write_text(_pem(arch.get_cert("root").dump()))
    animator = Animator(AnimatorArchStore(config.pki_archs), with_web_ui=False)
    server = make_server("127.0.0.1", port, animator, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return LocalPki(folder, port, config_path, server, thread, animator)


def _pem(der: bytes) -> str:
    from asn1crypto import pem

    return pem.armor("CERTIFICATE", der).decode()


@dataclass
class LocalCsc:
    """certomancer-csc-dummy (PyPI) on loopback, over the same Certomancer PKI, behind a
    small gate for what the dummy lacks:

    - every call must carry `Authorization: Bearer <token>` (401 otherwise);
    - while `declining` is set, credentials/authorize answers 403 (refused at the
      provider);
    - with `pin` (and `otp`) set, the credential is one the signer authorises: its
      credentials/info announces `authMode: explicit` with PIN (and an offline OTP) as CSC
      v1 §11.5 describes, and credentials/authorize answers 400 `invalid_request` unless
      the request carries exactly that PIN (and code), like a provider checking its
      signer's PIN; the dummy then derives the SAD bound to the hash as before.

    `requests` records every call's path and JSON body (the test's view of what left the
    platform)."""

    port: int
    token: str
    credential_id: str
    loop: object
    runner: object
    thread: threading.Thread
    declining: bool = False
    pin: str | None = None
    otp: str | None = None
    auth_mode: str | None = None  # announce this authMode instead (e.g. "oauth2code")
    requests: list[tuple[str, dict]] = field(default_factory=list)  # type: ignore[type-arg]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def credential(self, label: str) -> str:
        return f"{ARCH}/{label}"

    def stop(self) -> None:
        import asyncio

        loop = self.loop
        if not self.thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self.runner.cleanup(), loop)  # type: ignore[attr-defined,arg-type]
        future.result(10)
        loop.call_soon_threadsafe(loop.stop)  # type: ignore[attr-defined]
        self.thread.join(5)


def start_local_csc(pki: LocalPki, token: str = "org-access-token") -> LocalCsc:
    import asyncio

    from aiohttp import web
    from certomancer.registry import CertomancerConfig
    from csc_dummy.csc_dummy_server import CSCWithCertomancer, DummyServiceParams

    config = CertomancerConfig.from_file(str(pki.config_path), key_search_dir=str(pki.folder))
    with warnings.catch_warnings():
        # csc_dummy keeps its settings under string keys (aiohttp prefers AppKey).
        warnings.filterwarnings(
            "ignore", message="It is recommended to use web.AppKey", module="csc_dummy"
        )
        service = CSCWithCertomancer(
            config, service_params=DummyServiceParams(hash_pinning_required=True)
        )
        service.register_routes()
    port = _free_port()
    holder: dict[str, object] = {}

    @web.middleware
    async def gate(request, handler):  # type: ignore[no-untyped-def]
        csc: LocalCsc = holder["csc"]  # type: ignore[assignment]
        body = await request.json() if request.can_read_body else {}
        csc.requests.append((request.path, body))
        if request.headers.get("Authorization") != f"Bearer {token}":
            raise web.HTTPUnauthorized()
        if request.path.endswith("/credentials/authorize"):
            if csc.declining:
                raise web.HTTPForbidden()
            if csc.pin is not None and (
                body.get("PIN") != csc.pin or (csc.otp is not None and body.get("OTP") != csc.otp)
            ):
                return web.json_response(
                    {"error": "invalid_request", "error_description": "Invalid PIN or OTP"},
                    status=400,
                )
        response = await handler(request)
        if request.path.endswith("/credentials/info") and (csc.pin or csc.auth_mode):
            import json

            info = json.loads(response.text)
            if csc.pin is not None:
                info["authMode"] = "explicit"
                info["PIN"] = {"presence": "true", "format": "N", "label": "PIN"}
            if csc.otp is not None:
                info["OTP"] = {"presence": "true", "type": "offline", "format": "N"}
            if csc.auth_mode:
                info["authMode"] = csc.auth_mode
            return web.json_response(info)
        return response

    service.app.middlewares.append(gate)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(service.app)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
        ready.set()
        loop.run_forever()
        loop.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(10)
    csc = LocalCsc(port, token, f"{ARCH}/signer", loop, runner, thread)
    holder["csc"] = csc
    return csc
