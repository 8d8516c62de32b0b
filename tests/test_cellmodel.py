"""Synthetic cell model and reach estimate (issue 11, points 2 and 3; SPEC F17).

The model is generated once per test process (a few seconds) and shared.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely.geometry import box

from tocsin.geo import cellmodel as cm
from tocsin.geo import reach
from tocsin.geo.reference import reference_authorities


@pytest.fixture(scope="module")
def places():
    authorities, _ = reference_authorities()
    return {a.id: a for a in authorities}


@pytest.fixture(scope="module")
def model():
    return cm.synthetic_model()


def test_model_is_labelled_synthetic_everywhere(model):
    assert model.synthetic and model.kind == "synthetic"
    assert model.label == cm.SYNTHETIC_LABEL == "synthetic cell model"
    info = model.info
    assert info["synthetic"] is True and info["generator"] == "tocsin.geo.cellmodel/1"
    assert "SYNTHETIC" in info["disclaimer"] and len(info["inputs"][0]["sha256"]) == 64
    assert [o["share"] for o in info["params"]["operators"]] == [0.42, 0.33, 0.25]


def test_cell_ids_use_the_test_network_mcc(model):
    for o in model.operators:
        assert o.operator.mcc == "001"
        assert all(c.startswith(f"001-{o.operator.mnc}-") for c in o.cell_ids[:1000])
        assert len(set(o.cell_ids)) == len(o.cell_ids)
        assert o.cells == 3 * len(o.site_xy)


def test_shares_sum_to_one():
    assert math.isclose(sum(o.share for o in cm.SYNTHETIC_OPERATORS), 1.0)
    assert len(cm.SYNTHETIC_OPERATORS) == 3


def test_same_seed_same_model_other_seed_other_sites(model):
    cm.synthetic_model.cache_clear()
    again = cm.synthetic_model()
    assert again is not model
    assert cm.model_fingerprint(again) == cm.model_fingerprint(model)
    other = cm.synthetic_model(seed=7)
    assert cm.model_fingerprint(other) != cm.model_fingerprint(model)
    assert other.info["seed"] == 7


def test_the_model_is_the_same_in_another_process(model):
    import subprocess
    import sys

    code = ("from tocsin.geo import cellmodel as cm;"
            "print(cm.model_fingerprint(cm.synthetic_model()))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**__import__("os").environ, "PYTHONHASHSEED": "7"})
    assert out.stdout.strip() == cm.model_fingerprint(model)


def test_density_classes_follow_the_thresholds():
    assert cm.density_class(1500 * 10, 10) == "urban"
    assert cm.density_class(1499 * 10, 10) == "suburban"
    assert cm.density_class(300 * 10, 10) == "suburban"
    assert cm.density_class(299 * 10, 10) == "rural"


def test_sites_are_denser_in_town(model, places):
    o = model.operators[0]
    m = cm.municipalities()
    bxl, bastogne = m.nis.index("21004"), m.nis.index("82003")
    xy = shapely.points(o.site_xy)
    per_km2 = [int(shapely.contains(m.geoms[i], xy).sum()) / (m.area_m2[i] / 1e6)
               for i in (bxl, bastogne)]
    # ISD 500 m -> ~4.6 sites/km²; 1,732 m -> ~0.38 sites/km².
    assert per_km2[0] == pytest.approx(1 / (0.866 * 0.5 ** 2), rel=0.2)
    assert per_km2[1] == pytest.approx(1 / (0.866 * 1.732 ** 2), rel=0.25)


def test_sectors_partition_the_site_and_coverage_is_larger(model):
    o = model.operators[1]
    site = 1234
    idx = o.site_sectors[site]
    assert len(idx) == 3
    best = o.sectors(idx)
    assert shapely.union_all(best).area == pytest.approx(o.site_area[site].area, rel=1e-6)
    assert sum(b.area for b in best) == pytest.approx(o.site_area[site].area, rel=1e-6)
    cover = o.coverage(idx, best)
    assert all(c.contains(b) and c.area > b.area for c, b in zip(cover, best, strict=True))


def test_best_server_areas_cover_belgium(model):
    o = model.operators[2]
    assert shapely.union_all(o.site_area).covers(
        cm.municipalities().belgium.simplify(50).buffer(-200))


def test_whole_municipality_inside_matches_population(places):
    halle = places["23027"]
    est = reach.estimate_reach(halle.territory, ["lbsms", "cb"])
    pop = halle.population
    lb, cb = est["lbsms"], est["cb"]
    assert lb["phones_inside_expected"] == pytest.approx(pop * reach.LOCATED_FRACTION, rel=0.01)
    assert cb["phones_inside_expected"] == pytest.approx(pop * reach.CB_CAPABLE, rel=0.01)
    assert lb["phones_inside"][0] < lb["phones_inside_expected"] <= lb["phones_inside"][1]
    assert lb["phones_inside"][1] == pytest.approx(pop, rel=0.01)
    for key, o in lb["by_operator"].items():
        share = next(op.share for op in cm.SYNTHETIC_OPERATORS if op.key == key)
        assert o["phones_inside"][1] == pytest.approx(pop * share, rel=0.01)
        assert o["cells"] > 0 and o["model"] == "synthetic"
    assert lb["model"] == "synthetic" and lb["model_label"] == "synthetic cell model"


def test_part_of_halle_within_ten_percent_and_bleed_shown(places):
    halle = places["23027"].territory
    minx, miny, maxx, maxy = halle.bounds
    part = shapely.intersection(halle, box(minx, miny, (minx + maxx) / 2, maxy))
    m = cm.municipalities()
    region = cm.project(part)
    expected_people = cm.phones_in(region)
    pop = m.population[m.nis.index("23027")]
    assert 0.2 * pop < expected_people < 0.8 * pop
    lb = reach.estimate_reach(part, ["lbsms"])["lbsms"]
    for key, o in lb["by_operator"].items():
        share = next(op.share for op in cm.SYNTHETIC_OPERATORS if op.key == key)
        target = expected_people * share
        expected = lb["phones_inside_expected"] * share  # this operator's expected phones
        assert abs(expected - target) / target <= 0.10
        assert o["phones_inside"][0] <= target <= o["phones_inside"][1] * 1.0001
    assert lb["bleed_km2"] > 0 and lb["max_bleed_km"] > 0
    assert lb["phones_outside"][1] > lb["phones_outside"][0] > 0
    layer = reach.cells_layer(part)
    kinds = {f["properties"]["kind"] for f in layer["features"]}
    assert kinds == {"cell", "bleed"}
    assert layer["tocsin_cell_model"]["synthetic"] is True
    assert sum(f["properties"]["kind"] == "cell" for f in layer["features"]) == lb["cells"]


def test_estimate_fields_and_sanity(places):
    est = reach.estimate_reach(places["21004"].territory, ["sms", "lbsms", "cb"])
    assert set(est) == {"lbsms", "cb"}
    for e in est.values():
        assert {"phones_inside", "phones_outside", "bleed_km2", "max_bleed_km", "cells",
                "by_operator", "model"} <= set(e)
        lo, hi = e["phones_inside"]
        assert 0 <= lo <= hi and e["bleed_km2"] >= 0 and e["max_bleed_km"] >= 0
        assert e["cells"] == sum(o["cells"] for o in e["by_operator"].values())
        assert set(e["by_operator"]) == {"op1", "op2", "op3"}


def test_larger_area_never_lowers_inside(places):
    halle = places["23027"].territory
    small = shapely.intersection(halle, halle.centroid.buffer(0.02))
    a = reach.estimate_reach(small, ["lbsms"])["lbsms"]
    b = reach.estimate_reach(halle, ["lbsms"])["lbsms"]
    assert b["phones_inside"][0] >= a["phones_inside"][0]
    assert b["phones_inside"][1] >= a["phones_inside"][1]
    assert b["cells"] >= a["cells"]


def test_brussels_bleeds_less_far_than_the_ardennes():
    brussels = box(4.34, 50.83, 4.38, 50.86)
    ardennes = box(5.70, 50.00, 5.74, 50.03)  # Bastogne, Luxembourg province
    near = reach.estimate_reach(brussels, ["cb"])["cb"]["max_bleed_km"]
    far = reach.estimate_reach(ardennes, ["cb"])["cb"]["max_bleed_km"]
    assert 0 < near < far


def test_uk_bleed_formula():
    assert reach.uk_bleed_distance_m(0.1) == 1500.0  # < 1 phone per mi²
    assert reach.uk_bleed_distance_m(1e6) == 500.0
    assert reach.uk_bleed_distance_m(0.5) == 5000.0
    per_mi2 = 1000
    assert reach.uk_bleed_distance_m(per_mi2 / 2.589988) == pytest.approx(
        5900 - 1250 * math.log10(per_mi2))


def test_reach_factor_refuses_other_channels():
    with pytest.raises(ValueError, match="not a location-based channel"):
        reach.reach_factor("sms")


# --- imported model -----------------------------------------------------------------------

CSV = """cell_id,lat,lon,azimuth,beamwidth,range,technology
206-10-1-1,50.735,4.235,0,120,2000,4G
206-10-1-2,50.735,4.235,120,120,2000,4G
206-10-1-3,50.735,4.235,240,120,2000,4G
206-10-2-1,50.745,4.255,0,360,1500,2G
"""


def test_csv_import_reads_cells():
    cells = cm.parse_cells_csv(CSV.encode())
    assert [c.cell_id for c in cells][:2] == ["206-10-1-1", "206-10-1-2"]
    assert cells[3].beamwidth == 360 and cells[3].tech == "2G" and cells[3].range_m == 1500
    semicolons = CSV.replace(",", ";").replace("range", "range_m")
    assert cm.parse_cells_csv(semicolons) == cells


@pytest.mark.parametrize("change, line, field", [
    (lambda t: t.replace(",technology", ""), 1, "technology"),
    (lambda t: t.replace("0,120,2000,4G\n206-10-1-2", "0,120,abc,4G\n206-10-1-2"), 2, "range"),
    (lambda t: t.replace("50.735,4.235,120", "4.235,50.735,120"), 3, "lat"),
    (lambda t: t.replace("1500,2G", "1500,6G"), 5, "technology"),
    (lambda t: t.replace("206-10-1-2", "206-10-1-1"), 3, "cell_id"),
    (lambda t: t.replace("240,120", "240,0"), 4, "beamwidth"),
])
def test_bad_csv_names_line_and_column(change, line, field):
    with pytest.raises(cm.CellImportError) as err:
        cm.parse_cells_csv(change(CSV))
    assert (err.value.line, err.value.field) == (line, field)


def test_imported_operator_replaces_synthetic_and_is_labelled(places):
    cells = cm.parse_cells_csv(CSV)
    model = cm.model_with_imports({"op1": (cells, "operator1.csv")})
    assert model.kind == "mixed" and not model.synthetic
    assert "imported" in model.label and "synthetic" in model.label
    area = box(4.23, 50.73, 4.24, 50.74)
    est = reach.estimate_reach(area, ["lbsms"], model=model)["lbsms"]
    op1 = est["by_operator"]["op1"]
    assert op1["model"] == "imported" and op1["source"] == "operator1.csv"
    assert op1["cells"] >= 1
    assert est["by_operator"]["op2"]["model"] == "synthetic"
    assert est["model"] == "mixed"


def test_imported_model_without_cells_falls_back_to_uk_buffer(places):
    cells = cm.parse_cells_csv(CSV)
    model = cm.model_with_imports({"op1": (cells, "operator1.csv")})
    far_away = box(5.70, 50.00, 5.74, 50.03)
    est = reach.estimate_reach(far_away, ["lbsms"], model=model)["lbsms"]
    op1 = est["by_operator"]["op1"]
    assert op1["cells"] == 0 and op1["fallback_km2"] > 0
    assert op1["phones_outside"][1] > 0
    assert est["fallback_km2"] == pytest.approx(op1["fallback_km2"])


def test_wedges_point_the_right_way():
    w = cm.wedges_of(np.array([[0.0, 0.0]]), np.array([90.0]), np.array([60.0]),
                     np.array([1000.0]))[0]
    assert w.contains(shapely.Point(900, 0)) and not w.contains(shapely.Point(-900, 0))
    assert not w.contains(shapely.Point(0, 900))
