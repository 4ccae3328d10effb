"""Co-signing the joint letter, in parts:

- keys: custody per organisation, enrolled and platform-held SSH keys;
- authority: the platform CA and the organisations' PAdES certificates;
- eligibility: whose endorsement counted, the signing rounds;
- letter: the joint letter of a round, laid out and locked;
- documents: WeasyPrint layout and pyHanko PAdES signing/validation (no database);
- cosigning: statements, re-authentication, signatures, withdrawal, round hooks;
- verification: checking a co-signature (SSHSIG statement and PAdES signature);
- longterm: trusted timestamps, trust anchors from files, CRLs, B-LTA, assurance levels;
- bundle: the verification bundle anyone can check offline.

This module names the public API of the parts, so callers say `signing.sign_with_platform_key`.
"""

from consensus.signing.authority import (
    CA_VALIDITY,
    CERTIFICATE_VALIDITY,
    PKCS12_MAX_BYTES,
    all_ca_pem,
    crl_der,
    current_ca,
    current_certificate,
    ensure_ca,
    issue_certificate,
    revoke_certificate,
    trust_anchors_pem,
    upload_pkcs12,
)
from consensus.signing.cosigning import (
    CLOCK_SKEW,
    NAMESPACE,
    SIGNATURE_MAX_BYTES,
    STATEMENT_FORMAT,
    STATEMENT_MAX_AGE,
    STATEMENT_MAX_BYTES,
    PasswordChecked,
    ReAuthentication,
    accept_uploaded_signature,
    canonical_json,
    check_password_first,
    ensure_letters_of_open_rounds,
    iso,
    parse_statement,
    prepare_statement,
    record_failed_reauthentication,
    register,
    seal_letters_of_closed_rounds,
    sign_with_platform_key,
    statement_dict,
    withdraw,
)
from consensus.signing.eligibility import (
    COUNTED_FOR_ADOPTION,
    adopted_outcome,
    counted_stances,
    current_signing_round,
    eligible_organisations,
    signing_rounds,
)
from consensus.signing.keys import (
    CUSTODY_LABELS,
    DEFAULT_CUSTODY,
    create_platform_key,
    custody_of,
    enrol_key,
    keys_held_by,
    keys_of,
    platform_key,
    revoke_key,
    rotate_key,
    set_custody,
)
from consensus.signing.letter import (
    current_signatures,
    ensure_letter,
    letter_content,
    letter_is_final,
    letter_of,
)
from consensus.signing.verification import (
    SignatureCheck,
    allowed_signers_line,
    check_signature,
    ssh_verify_time,
)

__all__ = [
    "CA_VALIDITY",
    "CERTIFICATE_VALIDITY",
    "CLOCK_SKEW",
    "COUNTED_FOR_ADOPTION",
    "CUSTODY_LABELS",
    "DEFAULT_CUSTODY",
    "NAMESPACE",
    "PKCS12_MAX_BYTES",
    "PasswordChecked",
    "ReAuthentication",
    "SIGNATURE_MAX_BYTES",
    "STATEMENT_FORMAT",
    "STATEMENT_MAX_AGE",
    "STATEMENT_MAX_BYTES",
    "SignatureCheck",
    "accept_uploaded_signature",
    "adopted_outcome",
    "all_ca_pem",
    "allowed_signers_line",
    "canonical_json",
    "check_password_first",
    "check_signature",
    "counted_stances",
    "create_platform_key",
    "current_ca",
    "current_certificate",
    "current_signatures",
    "current_signing_round",
    "custody_of",
    "eligible_organisations",
    "enrol_key",
    "ensure_ca",
    "ensure_letter",
    "ensure_letters_of_open_rounds",
    "seal_letters_of_closed_rounds",
    "crl_der",
    "revoke_certificate",
    "iso",
    "issue_certificate",
    "keys_held_by",
    "keys_of",
    "letter_content",
    "letter_is_final",
    "letter_of",
    "parse_statement",
    "platform_key",
    "prepare_statement",
    "record_failed_reauthentication",
    "register",
    "revoke_key",
    "rotate_key",
    "set_custody",
    "sign_with_platform_key",
    "signing_rounds",
    "ssh_verify_time",
    "statement_dict",
    "trust_anchors_pem",
    "upload_pkcs12",
    "withdraw",
]
