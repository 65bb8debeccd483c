"""`reasongen promote`: gated promotion in the MLflow registry. A candidate version is scored on the test split
beside the current `champion`; it takes the alias only if it passes every gate in conf/promote/."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasongen import metrics, tracking
from reasongen.adgen.evaluation import WITH_CONTROLS
from reasongen.config import flatten
from reasongen.io import read_jsonl, write_json
from reasongen.text.attributes import value_lexicon

CHAMPION = "champion"
PREVIOUS = "previous"
REJECTED = "rejected"  # the version tag holding the reasons of a failed promotion


@dataclass
class Decision:
    candidate: str
    champion: str | None
    accepted: bool
    reasons: list[str] = field(default_factory=list)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)


def gate_failures(candidate: dict[str, Any], champion: dict[str, Any] | None, gates: DictConfig,
                  objective_cfg: Any) -> list[str]:
    """Why the candidate may not become champion (empty: it may)."""
    reasons = []
    if champion is not None:
        ours, theirs = metrics.objective(candidate, objective_cfg), metrics.objective(champion, objective_cfg)
        if ours < theirs - gates.tolerance:
            reasons.append(f"objective {ours:.2f} < champion {theirs:.2f} - tolerance {gates.tolerance}")
    checks = (("hallucination_rate", "max_hallucination_rate", max), ("violation_rate", "max_violation_rate", max),
              ("attribute_hallucination_rate", "max_attribute_hallucination_rate", max),
              ("unlisted_detail_rate", "max_unlisted_detail_rate", max),
              ("product_type_mismatch_rate", "max_product_type_mismatch_rate", max),
              ("repetition_rate", "max_repetition_rate", max), ("list_ending_rate", "max_list_ending_rate", max),
              ("cut_off_rate", "max_cut_off_rate", max),
              ("aspect_accuracy", "min_aspect_accuracy", min), ("length_accuracy", "min_length_accuracy", min))
    for metric, gate, kind in checks:
        value = candidate.get(metric)
        if value is None:
            continue  # no row asked for this control
        limit = gates[gate]
        if (kind is max and value > limit) or (kind is min and value < limit):
            reasons.append(f"{metric} {value:.1f} {'>' if kind is max else '<'} {limit}")
    return reasons


def score_version(name: str, version: str, rows: list[dict], cfg: DictConfig, lexicon: dict) -> dict[str, Any]:
    """The registered version's metrics on rows, generated with the decoding it was registered with, as the
    evaluate stage scores them: the headline with evaluate.use_controls, the control metrics from a run with the
    rows' controls when evaluate.control_table asks for one."""
    from reasongen.adgen.generator import load_text_generator

    generator = load_text_generator(f"models:/{name}/{version}")
    options = metrics.options(cfg, lexicon)
    use_controls = cfg.evaluate.use_controls
    scores = metrics.score(generator.generate(rows, use_controls=use_controls), rows, use_controls=use_controls,
                           **options)
    if cfg.evaluate.control_table and not use_controls:
        controlled = metrics.score(generator.generate(rows, use_controls=True), rows, **options)
        scores |= {name: controlled[name] for name in metrics.CONTROL_METRICS}
    return scores


# What decides which test rows a pipeline run scored: its metrics stand for promotion's only when these match.
SAME_TEST_ROWS = ("data.source", "data.max_rows", "data.split.seed", "data.split.val", "data.split.test",
                  "evaluate.max_examples", "evaluate.use_controls", "evaluate.control_table")


def recorded_scores(client, name: str, version: str, cfg: DictConfig) -> dict[str, Any] | None:
    """The `model/<metric>` test scores that the version's pipeline run logged, when that run scored exactly the
    rows promotion would (same raw data hash and split settings, every test row); None otherwise. Saves
    generating the test split again for a version the evaluate stage has just scored."""
    if cfg.promote.max_examples or not cfg.promote.get("reuse_recorded", True):
        return None
    run_id = client.get_model_version(name, version).tags.get("source_run_id")
    if not run_id:
        return None
    run = client.get_run(run_id)
    current = flatten(cfg)
    if run.data.tags.get("data_hash") != tracking.data_hash() or any(
            run.data.params.get(key) != str(current.get(key)) for key in SAME_TEST_ROWS):
        return None
    logged = run.data.metrics
    scores = {key.removeprefix("model/"): value for key, value in logged.items() if key.startswith("model/")}
    # the control metrics come from the run with controls in the prompt (evaluate.control_table)
    scores |= {name: logged[f"{WITH_CONTROLS}/{name}"] for name in metrics.CONTROL_METRICS
               if f"{WITH_CONTROLS}/{name}" in logged}
    return scores or None


def resolve_candidate(client, name: str, candidate: str | int) -> str:
    if str(candidate) != "latest":
        return str(candidate)
    versions = client.search_model_versions(f"name='{name}'")
    if not versions:
        raise LookupError(f"no version of {name} is registered: run `make run` first")
    return str(max(int(v.version) for v in versions))


def champion_version(client, name: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, CHAMPION).version)
    except MlflowException:
        return None


def promote(cfg: DictConfig, prepared_dir: Path = Path("outputs/prepare"),
            out_path: Path = Path("outputs/promote/decision.json")) -> Decision:
    import mlflow

    tracking.configure()
    client = mlflow.MlflowClient()
    name = cfg.tracking.registered_model
    candidate = resolve_candidate(client, name, cfg.promote.candidate)
    champion = champion_version(client, name)
    if champion == candidate:
        print(f"{name} v{candidate} is already {CHAMPION}")
        return Decision(candidate, champion, accepted=True)
    rows = read_jsonl(prepared_dir / "test.jsonl")
    rows = rows[: cfg.promote.max_examples] if cfg.promote.max_examples else rows
    lexicon = value_lexicon(read_jsonl(prepared_dir / "train.jsonl"))
    scores = {}
    for role, version in (("candidate", candidate), ("champion", champion)):
        if version is None:
            continue
        recorded = recorded_scores(client, name, version, cfg)
        source = "the test scores its pipeline run recorded" if recorded else "scoring the test split"
        print(f"{role} v{version}: {source}")
        scores[role] = recorded or score_version(name, version, rows, cfg, lexicon)
    reasons = gate_failures(scores["candidate"], scores.get("champion"), cfg.promote, cfg.evaluate.objective)
    decision = Decision(candidate, champion, accepted=not reasons, reasons=reasons, scores=scores)
    record(client, name, decision, cfg)
    write_json(out_path, decision.__dict__)
    return decision


def record(client, name: str, decision: Decision, cfg: DictConfig) -> None:
    """Move the aliases (or tag the rejection) and leave the evidence on the candidate version."""
    candidate = decision.candidate
    objective = metrics.objective(decision.scores["candidate"], cfg.evaluate.objective)
    client.set_model_version_tag(name, candidate, "test_objective", f"{objective:.3f}")
    if decision.accepted:
        if decision.champion is not None:
            client.set_registered_model_alias(name, PREVIOUS, decision.champion)
        client.set_registered_model_alias(name, CHAMPION, candidate)
        client.set_model_version_tag(name, candidate, "promotion", "accepted")
        if REJECTED in client.get_model_version(name, candidate).tags:  # an earlier decision, no longer true
            client.delete_model_version_tag(name, candidate, REJECTED)
        print(f"{name} v{candidate} is now {CHAMPION}"
              + (f"; v{decision.champion} is {PREVIOUS}" if decision.champion else ""))
    else:
        client.set_model_version_tag(name, candidate, "promotion", "rejected")
        client.set_model_version_tag(name, candidate, REJECTED, "; ".join(decision.reasons)[:5000])
        print(f"{name} v{candidate} rejected: " + "; ".join(decision.reasons))
