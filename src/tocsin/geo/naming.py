"""How people name an alert area, in French, Dutch, German and English (SPEC F13, F16).

Pure: no database, no I/O. The names fill ``{area_name}`` in public texts and
the CAP ``areaDesc``, so they are what a resident reads in an SMS:

- the country ("Belgique", "België", "Belgien", "Belgium") when the area
  covers (nearly) every province;
- a province ("Province de Namur", "Provincie Namen", "Provinz Namur",
  "Province of Namur") when it covers (nearly) all of one and nothing else;
- one municipality by its name ("Beersel"), also for a drawn area inside it:
  a resident of the drawn part lives in Beersel, and "(zone)" or "part of"
  in an alert header only confuses;
- two municipalities by their names ("Beersel et Drogenbos");
- several as "3 communes de Hal-Vilvorde" / "3 gemeenten in
  Halle-Vilvoorde": the arrondissement when they all lie in one, else the
  province, else the number of provinces.

A municipality touched by a sliver of the area (a border drawn a few metres
off) is not counted: see :data:`SLIVER_OF_AREA` and :data:`SLIVER_OF_PLACE`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: The languages names are given in (``campaigns.rules.LANGUAGES``).
LANGUAGES = ("fr", "nl", "de", "en")
#: Share of a province's surface that the area must cover to be named after it (or,
#: for every province, after the country): the rest is border slivers.
NEARLY_ALL = 0.95
#: A municipality counts when its part of the area is at least this share of the area…
SLIVER_OF_AREA = 0.02
#: …or at least this share of the municipality's own surface.
SLIVER_OF_PLACE = 0.10

COUNTRY_NAMES = {"fr": "Belgique", "nl": "België", "de": "Belgien", "en": "Belgium"}
#: The federal authority's NIS-like id (``authorities.reference_rules.FEDERAL_ID``).
COUNTRY_ID = "BE"

#: Province (and Brussels-Capital Region) names in German and English, by NIS code.
#: Sources: the German-speaking Community's usage (Provinz Lüttich, Hennegau…) and
#: the English names used by the Belgian federal portal (belgium.be).
_PROVINCES_DE_EN: dict[str, tuple[str, str]] = {
    "10000": ("Provinz Antwerpen", "Province of Antwerp"),
    "20001": ("Provinz Flämisch-Brabant", "Province of Flemish Brabant"),
    "20002": ("Provinz Wallonisch-Brabant", "Province of Walloon Brabant"),
    "30000": ("Provinz Westflandern", "Province of West Flanders"),
    "40000": ("Provinz Ostflandern", "Province of East Flanders"),
    "50000": ("Provinz Hennegau", "Province of Hainaut"),
    "60000": ("Provinz Lüttich", "Province of Liège"),
    "70000": ("Provinz Limburg", "Province of Limburg"),
    "80000": ("Provinz Luxemburg", "Province of Luxembourg"),
    "90000": ("Provinz Namur", "Province of Namur"),
    "04000": ("Region Brüssel-Hauptstadt", "Brussels-Capital Region"),
}
#: Municipalities (and arrondissements, by their chief town) with their own name
#: in German or English; others keep the name of their language area.
_EXONYMS: dict[str, dict[str, str]] = {
    "de": {"Bruxelles": "Brüssel", "Liège": "Lüttich", "Bruges": "Brügge"},
    "en": {"Bruxelles": "Brussels", "Anvers": "Antwerp", "Gand": "Ghent", "Bruges": "Bruges",
           "Ostende": "Ostend", "Ypres": "Ypres"},
}
_COUNT = {"fr": "{n} communes", "nl": "{n} gemeenten", "de": "{n} Gemeinden",
          "en": "{n} municipalities"}
_AND = {"fr": "et", "nl": "en", "de": "und", "en": "and"}
_PROVINCES = {"fr": "dans {k} provinces", "nl": "in {k} provincies", "de": "in {k} Provinzen",
              "en": "in {k} provinces"}


@dataclass(frozen=True)
class Place:
    """A named territory.

    ``id``: its NIS code (``BE`` for the country); ``names``: language -> its name
    in that language (fr, nl, de, en); ``within``: language -> the words that put
    a count in it ("de la province de Namur", "in de provincie Namen"), empty for
    a municipality; ``km2``: its surface in km² (EPSG:3812).
    """

    id: str
    names: Mapping[str, str]
    within: Mapping[str, str] = field(default_factory=dict)
    km2: float = 0.0


@dataclass(frozen=True)
class Piece:
    """The part of an area in one municipality: ``km2`` of the area lie in
    ``municipality``, which belongs to ``province`` and ``arrondissement`` (``None``
    when the arrondissement is the province itself, as in Brussels)."""

    municipality: Place
    km2: float
    province: Place
    arrondissement: Place | None = None


def _language_name(name_fr: str, name_nl: str, first_language: str) -> str:
    return name_nl if first_language == "nl" else name_fr


def municipality_place(nis: str, name_fr: str, name_nl: str, name_de: str | None,
                       languages: Sequence[str], km2: float = 0.0) -> Place:
    """A municipality named in each language: French and Dutch as registered
    (REFNIS); German its German name, else the name of its language area
    ("Antwerpen", "Namur") or the German exonym ("Lüttich"); English the name of
    its language area or the English exonym ("Antwerp", "Ghent", "Brussels").
    ``languages``: its official languages, the first one its language area's."""
    first = languages[0] if languages else "fr"
    local = name_de if first == "de" and name_de else _language_name(name_fr, name_nl, first)
    de = name_de or _EXONYMS["de"].get(name_fr, local)
    en = _EXONYMS["en"].get(name_fr, local)
    return Place(nis, {"fr": name_fr, "nl": name_nl, "de": de, "en": en}, km2=km2)


def province_place(nis: str, name_fr: str, name_nl: str, km2: float = 0.0) -> Place:
    """A province (or the Brussels-Capital Region, ``04000``) named in each language,
    with the words that put a count in it ("3 communes de la province de Namur")."""
    de, en = _PROVINCES_DE_EN.get(nis, (name_fr, name_fr))
    region = nis == "04000"

    def lower(name: str) -> str:
        return name if region else name[:1].lower() + name[1:]

    within = {"fr": f"de la {lower(name_fr)}",
              "nl": f"in het {name_nl}" if region else f"in de {lower(name_nl)}",
              "de": f"in der {de}", "en": f"in the {lower(en)}"}
    return Place(nis, {"fr": name_fr, "nl": name_nl, "de": de, "en": en}, within, km2)


def arrondissement_place(nis: str, name_fr: str, name_nl: str, dutch: bool,
                         named_after_town: bool) -> Place:
    """An administrative arrondissement ("Arrondissement de Hal-Vilvorde",
    "Arrondissement Halle-Vilvoorde") with the words that put a count in it.

    ``dutch``: it lies in Flanders (German and English then use the Dutch name).
    ``named_after_town``: its name is also a municipality's (Mechelen, Namur), so
    the word "arrondissement" is kept ("de l'arrondissement de Malines"); otherwise
    the name alone is clear ("3 gemeenten in Halle-Vilvoorde").
    """
    short_fr = name_fr.removeprefix("Arrondissement ").removeprefix("de ").removeprefix("d'")
    short_nl = name_nl.removeprefix("Arrondissement ")
    local = short_nl if dutch else short_fr
    de = _EXONYMS["de"].get(short_fr, local)
    en = _EXONYMS["en"].get(short_fr, local)
    if named_after_town:
        within = {"fr": f"de l'{name_fr[:1].lower()}{name_fr[1:]}",
                  "nl": f"in het arrondissement {short_nl}", "de": f"im Bezirk {de}",
                  "en": f"in the arrondissement of {en}"}
    else:
        within = {"fr": f"de {short_fr}", "nl": f"in {short_nl}", "de": f"in {de}",
                  "en": f"in {en}"}
    return Place(nis, {"fr": name_fr, "nl": name_nl, "de": f"Bezirk {de}",
                       "en": f"Arrondissement of {en}"}, within)


def _counted(pieces: Sequence[Piece], total: float) -> list[Piece]:
    """The municipalities that really are in the area: not a border sliver."""
    kept = [p for p in pieces if p.km2 >= SLIVER_OF_AREA * total
            or (p.municipality.km2 > 0 and p.km2 >= SLIVER_OF_PLACE * p.municipality.km2)]
    return kept or [max(pieces, key=lambda p: p.km2)]


def area_names(pieces: Sequence[Piece], *, country: Place | None = None,
               province_count: int = 0) -> dict[str, str]:
    """The area's name in fr, nl, de and en, as people say it (see the module docstring).

    ``pieces``: the area's part in each municipality it touches (km², EPSG:3812),
    in any order; every ``province`` carries its surface ``km2``. ``country``:
    the country with its surface (``None``: the area is never named after the
    country); it is named when the area covers nearly all of it
    (:data:`NEARLY_ALL`) and of each of its ``province_count`` provinces (11 with
    Brussels-Capital). Returns ``{}`` when no piece has a surface (the caller
    names the area after its authority).
    """
    pieces = [p for p in pieces if p.km2 > 0]
    if not pieces:
        return {}
    total = sum(p.km2 for p in pieces)
    covered: dict[str, float] = {}
    provinces: dict[str, Place] = {}
    for p in pieces:
        covered[p.province.id] = covered.get(p.province.id, 0.0) + p.km2
        provinces[p.province.id] = p.province
    whole = {pid for pid, km2 in covered.items()
             if provinces[pid].km2 > 0 and km2 >= NEARLY_ALL * provinces[pid].km2}
    if (country is not None and country.km2 > 0 and total >= NEARLY_ALL * country.km2
            and province_count and len(whole) >= province_count):
        return dict(country.names)
    counted = _counted(pieces, total)
    in_provinces = {p.province.id for p in counted}
    if len(whole) == 1 and in_provinces == whole:
        return dict(provinces[next(iter(whole))].names)
    if len(counted) == 1:
        return dict(counted[0].municipality.names)
    if len(counted) == 2:
        out = {}
        for lang in LANGUAGES:
            a, b = sorted(p.municipality.names[lang] for p in counted)
            out[lang] = f"{a} {_AND[lang]} {b}"
        return out
    n = len(counted)
    arrondissements = {p.arrondissement.id if p.arrondissement else None for p in counted}
    if len(arrondissements) == 1 and None not in arrondissements:
        where = counted[0].arrondissement.within  # type: ignore[union-attr]
    elif len(in_provinces) == 1:
        where = counted[0].province.within
    else:
        where = {lang: _PROVINCES[lang].format(k=len(in_provinces)) for lang in LANGUAGES}
    return {lang: f"{_COUNT[lang].format(n=n)} {where[lang]}" for lang in LANGUAGES}
