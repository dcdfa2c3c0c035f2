"""The classify command: one JSON line per file, exit code 0 even for rejected audio, 2 for usage errors."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples" / "cry"


def run(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.classifier", *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_classify_prints_one_json_object_per_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.ogg"
    broken.write_bytes(b"OggS" + b"\x00" * 100)
    result = run("classify", str(SAMPLES / "hungry-donateacry.ogg"), str(broken), "--json")
    assert result.returncode == 0, result.stderr
    answers = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["file"] for a in answers] == [str(SAMPLES / "hungry-donateacry.ogg"), str(broken)]
    assert answers[0]["status"] in {"ok", "not_sure"}
    assert answers[1]["status"] == "bad_audio" and answers[1]["quality"]["reason"] == "corrupt"
    assert all(
        set(a) == {"file", "status", "label", "probabilities", "quality", "model_version", "message"}
        for a in answers
    )


def test_usage_errors_exit_non_zero(tmp_path: Path) -> None:
    assert run("classify").returncode == 2
    assert run("classify", str(tmp_path / "missing.ogg")).returncode == 2
