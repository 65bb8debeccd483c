"""The layout holds: imports run downward only and form no cycle, the two tasks stay apart, stages import no stage,
and each stage's dvc.yaml entry lists exactly the source files its code reaches and the params it reads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from layout import LAYERS, SRC, all_modules, closure, find_cycle, import_graph, source_files, upward

REPO = SRC.parent
DVC = yaml.safe_load((REPO / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
# The register stages log the whole package as the pyfunc model's code (code_paths): they read all of src/reasongen.
SHIPS_THE_CODE = {"register", "explain_register"}
RESOURCES = {  # data files a module reads at run time (paths.resource)
    "src/reasongen/text/controls.py": {"src/reasongen/resources/aspects.yaml",
                                       "src/reasongen/resources/banned_words.txt"},
    "src/reasongen/explain/mining.py": {"src/reasongen/resources/explain_mining.yaml"},
}


def test_every_module_has_a_layer() -> None:
    for name in all_modules():
        assert any(name == p or name.startswith(p + ".") for group in LAYERS for p in group), name


def test_imports_run_downward_only_and_the_tasks_and_stages_stay_apart() -> None:
    found = upward(import_graph())
    assert not found, "imports of a higher layer or across tasks / stages:\n" + "\n".join(found)


def test_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_checks_catch_a_planted_upward_import_and_cycle() -> None:
    """The checks are not blind: the real graph plus an upward import (metrics -> adgen), a task crossing
    (explain -> adgen), a stage importing a stage, and a cycle."""
    graph = dict(import_graph())
    graph["reasongen.metrics.text_checks"] = graph["reasongen.metrics.text_checks"] | {"reasongen.adgen.selection"}
    graph["reasongen.explain.prompts"] = graph["reasongen.explain.prompts"] | {"reasongen.adgen.prompts"}
    graph["reasongen.stages.explain_tokenizer"] = graph["reasongen.stages.explain_tokenizer"] | {
        "reasongen.stages.tokenizer"}
    found = upward(graph)
    assert {"reasongen.metrics.text_checks -> reasongen.adgen.selection", "reasongen.explain.prompts -> "
            "reasongen.adgen.prompts", "reasongen.stages.explain_tokenizer -> reasongen.stages.tokenizer"} <= set(found)
    looped = dict(import_graph())
    looped["reasongen.paths"] = looped["reasongen.paths"] | {"reasongen.overrides"}  # overrides imports paths
    assert set(find_cycle(looped) or []) == {"reasongen.overrides", "reasongen.paths"}
    assert "reasongen.text.controls" in closure("reasongen.stages.prepare")


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == dep or path.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("stage", sorted(DVC))
def test_dvc_deps_list_exactly_the_source_a_stage_reads(stage: str) -> None:
    declared = [dep for dep in DVC[stage]["deps"] if dep.startswith("src/")]
    files = {str(f.relative_to(REPO)) for f in source_files(closure(f"reasongen.stages.{stage}"))}
    needed = files | {res for module, found in RESOURCES.items() if module in files for res in found}
    if stage in SHIPS_THE_CODE:
        assert declared == ["src/reasongen"]
        return
    missing = sorted(path for path in needed if not _covered(path, declared))
    assert not missing, f"{stage} reads {missing} but dvc.yaml does not list them"
    unused = [dep for dep in declared if not any(_covered(path, [dep]) for path in needed)]
    assert not unused, f"{stage}: dvc.yaml lists {unused}, which its code never reads"
    for dep in declared:  # a folder only where the stage reads every module in it
        if (REPO / dep).is_dir():
            prefix = ".".join(Path(dep).relative_to("src").parts)
            inside = {str(f.relative_to(REPO)) for f in source_files(
                {m for m in all_modules() if m == prefix or m.startswith(prefix + ".")})}
            assert inside <= needed, f"{stage}: {dep} holds modules the stage never reads: {sorted(inside - needed)}"


@pytest.mark.parametrize("stage", sorted(DVC))
def test_every_declared_param_is_read_by_the_stage(stage: str) -> None:
    """The converse of config.restrict (a stage reading an undeclared key fails at run time): each key dvc.yaml
    lists appears in the code the stage runs, so that no param re-runs a stage that ignores it."""
    declared = [p for p in DVC[stage]["params"] if isinstance(p, str)]
    text = "\n".join(f.read_text(encoding="utf-8") for f in source_files(closure(f"reasongen.stages.{stage}")))
    unread = [key for key in declared if not any(
        f"{part}" in text for part in (f".{key.rsplit('.', 1)[-1]}", f"[\"{key.rsplit('.', 1)[-1]}\"]"))]
    assert not unread, f"{stage}: dvc.yaml lists {unread}, which its code never reads"
