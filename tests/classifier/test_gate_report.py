"""The model card's gate table: pooled rejection rates and their group-bootstrap intervals."""

from services.classifier.evaluate import GateOutcome, gate_section, rejection_cell


def _outcomes(rejected: int, passed: int, clips_per_group: int = 1) -> list[GateOutcome]:
    reasons = ["not_a_cry"] * rejected + [None] * passed
    return [GateOutcome(reason, f"g{i // clips_per_group}") for i, reason in enumerate(reasons)]


def test_one_group_of_clips_gives_no_spread_whatever_its_size() -> None:
    assert rejection_cell(_outcomes(3, 5, clips_per_group=8), seed=1) == "37.5% [37.5%, 37.5%] (3 of 8)"


def test_the_interval_resamples_groups_not_clips() -> None:
    independent = rejection_cell(_outcomes(50, 50), seed=1)
    clustered = rejection_cell(_outcomes(50, 50, clips_per_group=10), seed=1)
    assert independent.startswith("50.0% [") and clustered.startswith("50.0% [")

    def width(cell: str) -> float:
        low, high = cell.split("[")[1].split("]")[0].split(", ")
        return float(high.rstrip("%")) - float(low.rstrip("%"))

    assert width(clustered) > 1.5 * width(independent), "ten clips of one instance are not ten witnesses"


def test_the_pooled_table_gives_every_gate_its_rate_interval_and_counts() -> None:
    rows = {
        "cry: donateacry-cleaned": _outcomes(1, 19),
        "not a cry, evaluation-only ESC-50: cat": _outcomes(4, 6),
    }
    ablation = {
        "cry: donateacry-cleaned": _outcomes(2, 18),
        "not a cry, evaluation-only ESC-50: cat": _outcomes(9, 1),
    }
    lines = gate_section(rows, {"without balancing": ablation}, seed=1)
    cries = next(line for line in lines if line.startswith("| all real cries |"))
    shipped, ablated = cries.split(" | ")[1:3]
    assert shipped.startswith("5.0% [") and shipped.endswith("(1 of 20)")
    assert ablated.startswith("10.0% [") and ablated.endswith("(2 of 20) |")
    assert any("real cries rejected 5.0% (target at most 5%: met)" in line for line in lines)
    assert any("recorded non-cries rejected at worst 40.0%" in line for line in lines)
