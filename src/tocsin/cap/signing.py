"""Optional XML signature of published CAP alerts (CAP 1.2 §3.3.2.1, W3C XML-DSig).

When the deployment sets ``TOCSIN_CAP_SIGNING_KEY_FILE`` (PEM RSA private key)
and ``TOCSIN_CAP_SIGNING_CERT_FILE`` (its PEM X.509 certificate), every CAP
alert is signed when it is built: an enveloped ``ds:Signature`` (RSA-SHA256,
SHA-256 digest, exclusive XML canonicalisation 1.0, reference ``URI=""`` =
the whole alert) appended as the last child of ``<alert>``, where the CAP 1.2
XSD admits it (``<any namespace="http://www.w3.org/2000/09/xmldsig#">``).
The certificate is embedded in ``ds:KeyInfo`` so receivers can check the
signature against the certificate they were given out of band.

The signed document is written without re-indentation: whitespace inside
``<alert>`` is signed content.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
)

from tocsin.cap.build import CapBuildError
from tocsin.cap.xml import parse_xml, validate_xsd
from tocsin.core.settings import Settings, get_settings

DSIG_NS = "http://www.w3.org/2000/09/xmldsig#"


class CapSigningError(ValueError):
    """The signing key or certificate cannot be used; names the setting."""


@lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int, setting: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CapSigningError(f"{setting}: cannot read {path}: {exc.strerror}") from None


def _file(path: Path, setting: str) -> bytes:
    try:
        mtime = path.stat().st_mtime_ns
    except OSError as exc:
        raise CapSigningError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    return _read(str(path), mtime, setting)


def sign_cap(xml: bytes, key_pem: bytes, cert_pem: bytes) -> bytes:
    """Sign a CAP 1.2 document (enveloped XML-DSig, RSA-SHA256); returns UTF-8 bytes.

    ``key_pem``: PEM private key; ``cert_pem``: its PEM certificate. The result
    still validates against the CAP 1.2 XSD (checked here). Raises
    ``CapSigningError`` for an unusable key or certificate, ``CapBuildError``
    if the signed document would not validate.
    """
    root = parse_xml(xml)
    signer = XMLSigner(
        signature_algorithm=SignatureMethod.RSA_SHA256,
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
    )
    try:
        signed = signer.sign(root, key=key_pem, cert=cert_pem.decode("ascii"))
    except (ValueError, TypeError) as exc:
        raise CapSigningError(f"cap_signing_key_file: cannot sign with this key: {exc}") from None
    errors = validate_xsd(signed)
    if errors:
        raise CapBuildError("signature: the signed alert fails the CAP 1.2 XSD: "
                            + "; ".join(errors))
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def sign_if_configured(xml: bytes, settings: Settings | None = None) -> bytes:
    """``xml`` signed with the deployment's key when both signing settings are set;
    unchanged otherwise. Raises ``CapSigningError`` naming the setting when only one
    is set or a file cannot be read."""
    settings = settings or get_settings()
    key_file, cert_file = settings.cap_signing_key_file, settings.cap_signing_cert_file
    if not key_file and not cert_file:
        return xml
    if not key_file or not cert_file:
        missing = "cap_signing_cert_file" if key_file else "cap_signing_key_file"
        raise CapSigningError(f"{missing}: required when the other signing setting is set")
    return sign_cap(xml, _file(key_file, "cap_signing_key_file"),
                    _file(cert_file, "cap_signing_cert_file"))


def verify_cap(xml: bytes, cert_pem: bytes) -> etree._Element:
    """Check the signature of a signed CAP alert against ``cert_pem``; returns the
    signed ``<alert>`` element. Raises ``signxml.exceptions.InvalidSignature``
    (or another ``signxml`` error) when it does not verify."""
    result = XMLVerifier().verify(xml, x509_cert=cert_pem.decode("ascii"))
    signed = result.signed_xml  # type: ignore[union-attr]
    assert signed is not None
    return signed
