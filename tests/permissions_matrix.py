"""The expected authorization matrix (issue 8): every service use case × every role ×
every relation between the actor's authority and the one acted on.

This table is the specification; ``tests/test_permissions_matrix.py`` runs every cell
through the real services and ``docs/permissions.md`` is rendered from it
(``python tests/permissions_matrix.py > docs/permissions.md``; a test keeps it current).

Outcomes:
  A  allowed
  C  allowed, the area clipped to what may be targeted (the operator is told what was cut)
  D  denied: HTTP 403 / CLI exit 1 naming the rule, and an audit entry
  H  hidden: "not found" (HTTP 404), so guessing ids confirms nothing
  I  refused as invalid input for a reason that is not a permission (e.g. "not a neighbour")
  -  the relation does not exist for this actor
"""

from __future__ import annotations

#: Who acts: (role, authority id, description).
PROFILES: dict[str, tuple[str, str, str]] = {
    "federal": ("federal_operator", "BE", "federal operator (BE)"),
    "admin": ("admin", "23027", "admin of Halle"),
    "operator": ("operator", "23027", "operator of Halle"),
    "viewer": ("viewer", "23027", "viewer of Halle"),
    "province": ("operator", "20001", "operator of the province of Flemish Brabant"),
}

#: The authority acted on, per relation, for actors of a municipality (Halle), of a
#: province (Flemish Brabant) and of the federal authority. Real neighbours from the
#: data: Halle borders Beersel, Pepingen and Sint-Pieters-Leeuw; Flemish Brabant
#: borders Antwerp; Malmedy is far from both.
RELATIONS: dict[str, dict[str, str]] = {
    "own": {"municipality": "23027", "province": "20001", "federal": "BE"},
    "cooperation member": {"municipality": "23064"},           # Pepingen, in Halle's cooperation
    "partner neighbour": {"municipality": "23003"},            # Beersel, accepted partnership
    "non-partner neighbour": {"municipality": "23077", "province": "10000"},
    "parent province": {"municipality": "20001"},
    "own municipality": {"province": "23027", "federal": "23027"},
    "unrelated": {"municipality": "63049", "province": "63049", "federal": "63049"},
}
RELATION_ORDER = list(RELATIONS)

#: Use case -> (what runs, {profile: outcomes in RELATION_ORDER}).
MATRIX: dict[str, tuple[str, dict[str, str]]] = {
    "campaign.prepare": (
        "estimate a campaign of the actor's authority over the related authority's territory",
        {"federal": "A----AA", "admin": "AAADC-D", "operator": "AAADC-D",
         "viewer": "DDDDD-D", "province": "A--D-AD"}),
    "campaign.launch": (
        "launch (simulation) a campaign of the actor's authority over that territory",
        {"federal": "A----AA", "admin": "AAADC-D", "operator": "AAADC-D",
         "viewer": "DDDDD-D", "province": "A--D-AD"}),
    "campaign.read": (
        "read the report of a campaign of the related authority",
        {"federal": "A----AA", "admin": "AAHHH-H", "operator": "AAHHH-H",
         "viewer": "AAHHH-H", "province": "A--H-AH"}),
    "campaign.update": (
        "send an update of a campaign of the related authority",
        {"federal": "A----AA", "admin": "AAHHH-H", "operator": "AAHHH-H",
         "viewer": "DDHHH-H", "province": "A--H-DH"}),
    "campaign.cancel": (
        "cancel a campaign of the related authority",
        {"federal": "A----AA", "admin": "AAHHH-H", "operator": "AAHHH-H",
         "viewer": "DDHHH-H", "province": "A--H-DH"}),
    "campaign.approve": (
        "approve a live campaign of the related authority prepared by another user "
        "(two-person rule on; the actor passed TOTP)",
        {"federal": "A----AA", "admin": "AAHHH-H", "operator": "AAHHH-H",
         "viewer": "DDHHH-H", "province": "A--H-DH"}),
    "report.read": (
        "list the campaigns of the related authority",
        {"federal": "A----AA", "admin": "AAHHH-H", "operator": "AAHHH-H",
         "viewer": "AAHHH-H", "province": "A--H-AH"}),
    "users.manage": (
        "create an operator account in the related authority",
        {"federal": "A----AA", "admin": "ADDDD-D", "operator": "DDDDD-D",
         "viewer": "DDDDD-D", "province": "D--D-DD"}),
    "templates.manage": (
        "create a template of the related authority",
        {"federal": "A----AA", "admin": "AADDD-D", "operator": "AADDD-D",
         "viewer": "DDDDD-D", "province": "A--D-DD"}),
    "partnerships.manage": (
        "propose a partnership from the actor's municipality to the related authority",
        {"federal": "D----DD", "admin": "IAIAI-I", "operator": "DDDDD-D",
         "viewer": "DDDDD-D", "province": "D--D-DD"}),
    "settings.manage": (
        "turn the two-person rule on for the related authority",
        {"federal": "A----AA", "admin": "ADDDD-D", "operator": "DDDDD-D",
         "viewer": "DDDDD-D", "province": "D--D-DD"}),
    "authorities.manage": (
        "change the agreement of the related authority",
        {"federal": "A----AA", "admin": "DDDDD-D", "operator": "DDDDD-D",
         "viewer": "DDDDD-D", "province": "D--D-DD"}),
    "subscribers.manage": (
        "import subscribers into the national registry (the relation does not matter)",
        {"federal": "A----AA", "admin": "DDDDD-D", "operator": "DDDDD-D",
         "viewer": "DDDDD-D", "province": "D--D-DD"}),
    "gateway_keys.manage": (
        "create a CAP gateway key (the relation does not matter)",
        {"federal": "A----AA", "admin": "DDDDD-D", "operator": "DDDDD-D",
         "viewer": "DDDDD-D", "province": "D--D-DD"}),
    "lbsms.use": (
        "use location-based SMS (policy only until the channel exists; the actors have "
        "no training record: see the agreement/training rows)",
        {"federal": "D----DD", "admin": "DDDDD-D", "operator": "DDDDD-D",
         "viewer": "DDDDD-D", "province": "D--D-DD"}),
    "audit.read": (
        "read the audit log of the related authority (policy only until its page exists)",
        {"federal": "A----AA", "admin": "ADDDD-D", "operator": "DDDDD-D",
         "viewer": "DDDDD-D", "province": "D--D-DD"}),
    "contacts.manage": (
        "import a contact list of the related authority (a dry run); groups alike",
        {"federal": "A----AA", "admin": "AADDD-D", "operator": "DDDDD-D",
         "viewer": "DDDDD-D", "province": "D--D-DD"}),
    "contacts.read": (
        "list the groups of the related authority (its own and its cooperation's)",
        {"federal": "A----AA", "admin": "AADDD-D", "operator": "AADDD-D",
         "viewer": "DDDDD-D", "province": "A--D-DD"}),
}

#: Agreement and training rows: (description, actor facts, use case, expected outcome).
AGREEMENT_CELLS: list[tuple[str, str]] = [
    ("a type-2 (groups only) authority never launches to an area", "D"),
    ("an authority without agreement never launches", "D"),
    ("a trained operator of a type-1 authority uses location-based SMS", "A"),
    ("a trained operator of a type-2 authority never uses location-based SMS", "D"),
    ("a live launch without a second factor is refused", "D"),
    ("nobody approves their own campaign", "D"),
    ("a municipality never targets outside Belgium (area in France)", "D"),
]

LEGEND = {"A": "allowed", "C": "allowed, clipped", "D": "denied (403)",
          "H": "not found (404)", "I": "invalid input", "-": "n/a"}


def kind_of(profile: str) -> str:
    """``municipality``, ``province`` or ``federal``: which RELATIONS column applies."""
    return {"BE": "federal", "20001": "province"}.get(PROFILES[profile][1], "municipality")


def render() -> str:
    """docs/permissions.md."""
    lines = [
        "# Permissions",
        "",
        "Who may do what, where. Generated from `tests/permissions_matrix.py` (the same",
        "table `tests/test_permissions_matrix.py` runs through the real services on",
        "SQLite and PostgreSQL); regenerate with",
        "`.venv/bin/python tests/permissions_matrix.py > docs/permissions.md`.",
        "The rules themselves live in `src/tocsin/authorities/policy.py`.",
        "",
        "Legend: " + ", ".join(f"**{k}** {v}" for k, v in LEGEND.items()) + ".",
        "",
        "Relations (the authority acted on, for an actor of Halle / of the province of",
        "Flemish Brabant / of the federal authority):",
        "",
    ]
    for rel in RELATION_ORDER:
        ids = ", ".join(f"{k}: {v}" for k, v in RELATIONS[rel].items())
        lines.append(f"- *{rel}*: {ids}")
    lines += ["", "Actors: " + "; ".join(f"*{p}* = {d}" for p, (_, _, d) in PROFILES.items())
              + ".", ""]
    for use_case, (what, rows) in MATRIX.items():
        lines += [f"## {use_case}", "", what[:1].upper() + what[1:] + ".", "",
                  "| actor | " + " | ".join(RELATION_ORDER) + " |",
                  "| --- |" + " --- |" * len(RELATION_ORDER)]
        for profile, cells in rows.items():
            lines.append(f"| {profile} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Agreements, training, second factor, two-person rule", ""]
    lines += [f"- {text}: **{LEGEND[outcome]}**" for text, outcome in AGREEMENT_CELLS]
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
