"""A local public-key infrastructure for the signing tests: Certomancer (PyPI) serving a
timestamping authority (RFC 3161) and its CRL on loopback, and the files an operator would
configure (the TSA's URL, a trust-anchor directory).

Keys are generated per test session into a temporary directory; the Certomancer
configuration is written next to them with the loopback address as its URL prefix, so the
certificates' CRL distribution points lead to the running server.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ARCH = "consensus-test"

CONFIG = """
external-url-prefix: "{prefix}"
keysets:
  {arch}:
    path-prefix: "{keys}"
    keys:
      root: {{path: root.key.pem}}
      tsa: {{path: tsa.key.pem}}
      signer: {{path: signer.key.pem}}
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
    services:
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
    for name in ("root", "tsa", "signer"):
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
    for label in ("root", "tsa", "signer"):
        cert = arch.get_cert(label)
        (certs / f"{label}.cert.pem").write_text(_pem(cert.dump()))
    anchors = folder / "anchors"
    anchors.mkdir()
    (anchors / "test-root.pem").write_text(_pem(arch.get_cert("root").dump()))
    animator = Animator(AnimatorArchStore(config.pki_archs), with_web_ui=False)
    server = make_server("127.0.0.1", port, animator, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return LocalPki(folder, port, config_path, server, thread)


def _pem(der: bytes) -> str:
    from asn1crypto import pem

    return pem.armor("CERTIFICATE", der).decode()
