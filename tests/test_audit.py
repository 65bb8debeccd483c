"""pip-audit on requirements.lock (the pinned versions, not resolved again): no known vulnerability among the
packages it could audit. pip-audit comes from `make test-slow` (.venv-audit) or PATH; it needs PyPI's JSON API or
OSV. Where it could audit no package at all, the test is skipped with the reason: "no known vulnerabilities" would
then say nothing."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from conftest import REPO, record_figure

pytestmark = pytest.mark.slow


def pip_audit() -> str | None:
    local = REPO / ".venv-audit" / "bin" / "pip-audit"
    return str(local) if local.exists() else shutil.which("pip-audit")


def test_no_known_vulnerability_in_the_lock_file(tmp_path) -> None:
    tool = pip_audit()
    if tool is None:
        pytest.skip("pip-audit is not installed (make test-slow installs it in .venv-audit)")
    report = tmp_path / "audit.json"
    done = subprocess.run([tool, "-r", str(REPO / "requirements.lock"), "--no-deps", "--disable-pip",
                           "--progress-spinner", "off", "-f", "json", "-o", str(report)],
                          capture_output=True, text=True, timeout=900)
    assert report.exists(), done.stdout[-2000:] + done.stderr[-2000:]
    packages = json.loads(report.read_text())["dependencies"]
    skipped = [p for p in packages if "skip_reason" in p]
    vulnerable = {p["name"]: [v["id"] for v in p["vulns"]] for p in packages if p.get("vulns")}
    record_figure("pip-audit", pinned=len(packages), audited=len(packages) - len(skipped), skipped=len(skipped),
                  skip_reason=skipped[0]["skip_reason"] if skipped else None, vulnerable=vulnerable)
    if len(skipped) == len(packages):
        pytest.skip(f"pip-audit could audit none of the {len(packages)} pinned packages: {skipped[0]['skip_reason']}")
    assert not vulnerable, vulnerable
