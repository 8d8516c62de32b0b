"""Official languages of Belgian authorities (pure rules, no I/O).

Source: the Belgian Constitution, art. 4 (the four linguistic regions) and the
laws on the use of languages in administrative matters (coordinated 18 July
1966): Flanders is Dutch-speaking, Wallonia French-speaking except the nine
municipalities of the German-speaking region (which also have facilities in
French), Brussels-Capital is bilingual French/Dutch, the federal state uses
French, Dutch and German. The province of Liège contains the German-speaking
region, so it communicates in French and German.
"""

from __future__ import annotations

import re

FEDERAL_ID = "BE"
BRUSSELS_REGION_NIS = "04000"
FLEMISH_REGION_NIS = "02000"
WALLOON_REGION_NIS = "03000"
LIEGE_PROVINCE_NIS = "60000"

#: NIS codes (REFNIS 2019) of the nine municipalities of the German-speaking region.
GERMAN_SPEAKING_NIS: frozenset[str] = frozenset(
    {"63001", "63012", "63013", "63023", "63040", "63048", "63061", "63067", "63087"}
)

_NIS_RE = re.compile(r"^\d{5}$")


def official_languages(
    nis: str, region_nis: str | None = None, province_nis: str | None = None
) -> list[str]:
    """The official languages of an authority, most important first.

    ``nis`` is the authority id: a 5-digit NIS code (municipality, province,
    or ``04000`` for the Brussels-Capital Region) or ``"BE"`` (federal).
    ``region_nis`` is the region's NIS code (``02000`` Flemish, ``03000``
    Walloon, ``04000`` Brussels-Capital) and is required for municipalities
    and provinces; ``province_nis`` is informational (Brussels municipalities
    have none).

    Returns ISO 639-1 codes, e.g. ``["fr", "nl"]``.

    Raises ValueError naming the field when ``nis`` is not a NIS code or
    ``"BE"``, or when ``region_nis`` is missing or unknown.
    """
    if nis == FEDERAL_ID:
        return ["fr", "nl", "de"]
    if not isinstance(nis, str) or not _NIS_RE.match(nis):
        raise ValueError(f"nis: {nis!r} is not a 5-digit NIS code nor 'BE'")
    if nis == BRUSSELS_REGION_NIS or region_nis == BRUSSELS_REGION_NIS:
        return ["fr", "nl"]
    if nis in GERMAN_SPEAKING_NIS:
        return ["de", "fr"]
    if nis == LIEGE_PROVINCE_NIS:
        return ["fr", "de"]
    if region_nis == FLEMISH_REGION_NIS:
        return ["nl"]
    if region_nis == WALLOON_REGION_NIS:
        return ["fr"]
    raise ValueError(
        f"region_nis: {region_nis!r} is not a Belgian region NIS code (02000, 03000, 04000)"
    )
