"""Shared fixtures: offline hub, tiny synthetic prepared rows, a tiny BPE tokenizer, the composed tiny config."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Tiny models gain nothing from threads, and two cores shared with another job make threaded torch ops ~10x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Task B's salt file goes to a throwaway folder, never the tester's ~/.config (the folder is made on first use)
os.environ["REASONGEN_SECRETS_DIR"] = os.path.join(__import__("tempfile").mkdtemp(prefix="reasongen-secrets-"))
os.environ.pop("REASONGEN_EXPLAIN_SALT", None)

import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from copy import deepcopy  # noqa: E402
from functools import lru_cache  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from omegaconf import DictConfig, OmegaConf  # noqa: E402

from benchmarks.bench.loopback import JSON, free_port, ping, post, server  # noqa: E402,F401
from reasongen.io import write_jsonl  # noqa: E402

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
REPO = CONF_DIR.parent
BIN = Path(sys.executable).parent
TINY_ROWS = 120  # the tiny preset's data.max_rows

KINDS = ["裙", "裤", "上衣", "外套", "衬衫"]
COLORS = ["蓝色", "红色", "白色", "黑色", "黄色", "绿色", "粉色", "灰色"]
STYLES = ["简约", "复古", "性感", "休闲"]
PHRASES = ["版型修身显瘦", "面料柔软亲肤", "穿着舒适自在", "适合日常通勤", "设计简约大方", "细节精致用心",
           "颜色清新百搭", "领口设计别致", "轻松穿出时尚感", "腰线提高显腿长"]
ASPECTS = ["舒适", "显瘦", "时尚", None]
BUCKETS = ["short", "medium", "long"]


def make_rows(n: int = 40) -> list[dict]:
    """n deterministic prepared rows in the prepare stage's format, each a distinct attribute set."""
    rows = []
    for i in range(n):
        pairs = [["类型", KINDS[i % 5]], ["颜色", COLORS[i % 8]], ["风格", STYLES[(i // 5) % 4]]]
        phrases = [PHRASES[(i + j * 3) % len(PHRASES)] for j in range(1 + i % 4)]
        summary = f"这款{pairs[1][1]}{pairs[0][1]}" + "，".join(phrases) + "。"
        rows.append({
            "id": f"L{i + 1}",
            "line": i + 1,
            "content": "*".join(f"{k}#{v}" for k, v in pairs),
            "summary": summary,
            "attributes": pairs,
            "group": "*".join(sorted(f"{k}#{v}" for k, v in pairs)),
            "aspect": ASPECTS[i % 4],
            "length_bucket": BUCKETS[i % 3],
            "keywords": [phrases[0][:2]] if i % 2 else [],
        })
    return rows


@pytest.fixture(scope="session")
def tiny_rows() -> list[dict]:
    return make_rows()


@pytest.fixture(scope="session")
def tiny_prepared(tmp_path_factory, tiny_rows) -> Path:
    """train/val/test.jsonl as the prepare stage writes them (30/5/5 rows)."""
    folder = tmp_path_factory.mktemp("prepare")
    write_jsonl(folder / "train.jsonl", tiny_rows[:30])
    write_jsonl(folder / "val.jsonl", tiny_rows[30:35])
    write_jsonl(folder / "test.jsonl", tiny_rows[35:])
    return folder


@pytest.fixture(scope="session")
def bpe_tokenizer(tiny_prepared):
    """A ~300-token byte-level BPE trained on the fixture rows by the tokenizer stage's own function."""
    from reasongen.adgen.prompts import training_texts
    from reasongen.io import iter_jsonl
    from reasongen.modeling.tokenizers import bpe_from_texts

    return bpe_from_texts(training_texts(iter_jsonl(tiny_prepared / "train.jsonl")), vocab_size=300, min_frequency=1)


# Stage functions called in-process train without MLflow (it would write to the checkout's store); the `pipeline`
# fixture and the tests of live tracking use the mlflow logger.
TINY = ["experiment=tiny", "logger=none"]


@lru_cache(maxsize=1)
def _tiny_cfg() -> DictConfig:
    from reasongen.config import compose

    return compose(TINY, config_dir=CONF_DIR)


@pytest.fixture(scope="session")
def tiny_cfg():
    """tiny_cfg("peft=ia3", finetune={"max_steps": 3}): experiment=tiny (logger=none) composed with Hydra overrides
    (strings containing '=' before any keyword), then merged with plain-dict section overrides."""

    def build(*overrides: str, **sections) -> DictConfig:
        from reasongen.config import compose

        cfg = compose([*TINY, *overrides], config_dir=CONF_DIR) if overrides else deepcopy(_tiny_cfg())
        return OmegaConf.merge(cfg, OmegaConf.create(sections)) if sections else cfg

    return build


# Tiny architectures. Large initial weights keep a random model's logits far apart, so that greedy decoding
# never hinges on float noise when two computations of the same thing are compared.
TINY_CONFIGS = {
    "gpt2": {"model_type": "gpt2", "n_layer": 1, "n_head": 2, "n_embd": 32, "n_positions": 128,
             "initializer_range": 0.5},
    "llama": {"model_type": "llama", "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
              "hidden_size": 32, "intermediate_size": 64, "max_position_embeddings": 128,
              "tie_word_embeddings": True, "initializer_range": 0.5},
}


@pytest.fixture(scope="session")
def tiny_model():
    """tiny_model("gpt2" | "llama", tokenizer, seed=0): a seeded random model built by model_io.from_config."""

    def build(kind: str, tokenizer, seed: int = 0):
        import torch

        from reasongen.modeling.model_io import from_config

        torch.manual_seed(seed)
        return from_config(dict(TINY_CONFIGS[kind]), tokenizer)

    return build


def record_figure(probe: str, **figures) -> None:
    """Append a probe's figures to $REASONGEN_FIGURES (JSON Lines), when set: what docs/reliability.md reports."""
    target = os.environ.get("REASONGEN_FIGURES")
    if target:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"probe": probe, **figures}, ensure_ascii=False) + "\n")


def store_client(work: Path):
    """An MLflow client on the embedded store (tracking and registry) of a pipeline copy."""
    import mlflow

    uri = f"sqlite:///{work / 'mlflow.db'}"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def tiny_raw_file(folder: Path) -> Path:
    """A 120-row AdvertiseGen file with two malformed lines, built from the shared rows when present."""
    shared = Path(os.environ.get("REASONGEN_SHARED", REPO.parent / "shared")) / "data/advertisegen/train_head5000.json"
    if shared.exists():
        lines = shared.read_text(encoding="utf-8").splitlines()[:TINY_ROWS]
    else:  # a self-made stand-in keeps the test meaningful without ../shared
        colours, styles = ("白色", "黑色", "蓝色", "红色", "粉色"), ("简约", "复古", "清新", "性感", "休闲", "文艺")
        lines = [json.dumps({"content": f"类型#裙*颜色#{c}*风格#{s}*图案#{i}",
                             "summary": f"这款{c}裙子{s}又显瘦，上身舒适百搭，很有气质。"}, ensure_ascii=False)
                 for c in colours for s in styles for i in range(5)][:TINY_ROWS]
    lines[3] = "{not json"
    lines[7] = json.dumps({"content": "类型裙", "summary": "没有井号的属性"}, ensure_ascii=False)
    path = folder / "my_rows.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


FEATURE_WORDS = ["sound", "tone", "price", "strings", "cable", "tuner"]
OPINION_WORDS = ["great", "good", "cheap", "clear", "solid", "warm"]
TINY_REVIEW_USERS, TINY_REVIEW_ITEMS, REVIEWS_PER_USER = 20, 12, 8


def make_reviews() -> list[dict]:
    """Deterministic Amazon-format reviews: 20 users x 8 of 12 items, each with one feature-opinion sentence."""
    reviews = []
    for user in range(TINY_REVIEW_USERS):
        for k in range(REVIEWS_PER_USER):
            item = (user + 3 * k) % TINY_REVIEW_ITEMS
            feature = FEATURE_WORDS[(user + item) % len(FEATURE_WORDS)]
            opinion = OPINION_WORDS[(user * 7 + item) % len(OPINION_WORDS)]
            text = (f"I bought this for my band last year. The {feature} is really {opinion} on this one. "
                    "Shipping took a week.")
            reviews.append({"reviewerID": f"A{user:03d}REVIEWER", "asin": f"B{item:03d}ITEM",
                            "reviewerName": f"Person {user}", "helpful": [0, 0], "reviewText": text,
                            "overall": float(1 + (user + item) % 5), "summary": "ok", "unixReviewTime": 1400000000,
                            "reviewTime": "05 13, 2014"})
    return reviews


# Rejected lines that a regex redaction would leak: each holds a raw reviewer id or name (all contain `REVIEWER`
# or `Person `) in a shape that is cut short, repeated, nested, escaped or not a string.
MALFORMED_REVIEW_LINES = [
    "{not json",
    json.dumps({"reviewerID": "AMISSING", "reviewerName": "No Item", "reviewText": "x", "overall": 5}),
    "OVERALL_OUT_OF_RANGE",  # the first review with overall 7.0, filled in below
    '{"reviewerID": "A900REVIEWER", "reviewerName": "Person Cut", "asin": "B001ITEM", "reviewText": "cut sh',
    '{"reviewerName": "Person Twice", "reviewerID": "A901REVIEWER", "reviewerName": "Person Twice", "asin": 1}',
    json.dumps({"reviewerID": ["A902REVIEWER"], "reviewerName": "Person List", "asin": "B001ITEM", "overall": 5}),
    json.dumps({"reviewerID": "A903REVIEWER", "asin": "B001ITEM", "overall": 5,
                "extra": {"reviewerName": "Person Nested", "reviewerID": "A904REVIEWER"}}),
    '{"reviewerID" : "A905REVIEWER", "reviewerName":"Person \\"Quoted\\" Name", "asin": "B001ITEM"}',
    '["A906REVIEWER", "Person Array"]',
]
MALFORMED_LINE_NUMBERS = [5 + 4 * k for k in range(len(MALFORMED_REVIEW_LINES))]


def tiny_reviews_file(folder: Path) -> Path:
    """The reviews above as a gzipped JSON Lines file, with the malformed lines above at MALFORMED_LINE_NUMBERS."""
    import gzip

    lines = [json.dumps(review) for review in make_reviews()]
    for number, line in zip(MALFORMED_LINE_NUMBERS, MALFORMED_REVIEW_LINES, strict=True):
        if line == "OVERALL_OUT_OF_RANGE":
            line = json.dumps({**make_reviews()[0], "overall": 7.0})
        lines.insert(number - 1, line)
    path = folder / "reviews.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def copy_path(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
                        dirs_exist_ok=True)
    elif source.exists():
        shutil.copy(source, target)


@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A git + DVC copy of the repo with the tiny preset on the user's-own-JSONL data path, after `dvc repro`."""
    work = tmp_path_factory.mktemp("repo")
    for name in ("conf", "src", "dvc.yaml", "pyproject.toml", "requirements.lock", ".dvcignore", ".gitignore",
                 *(str(marker.relative_to(REPO)) for marker in REPO.glob("checkpoints/*/.gitignore"))):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        copy_path(REPO / name, work / name)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(work / "src")}
    # mlflow.set_tracking_uri / set_registry_uri write these into os.environ, so an earlier test in this process can
    # leave them pointing at its own store: the copy's commands and servers must use the copy's (registry = tracking)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("MLFLOW_REGISTRY_URI", None)
    raw = tiny_raw_file(tmp_path_factory.mktemp("user"))
    reviews = tiny_reviews_file(tmp_path_factory.mktemp("reviews"))
    run(["git", "init", "-q"], work, env)
    run(["git", "-c", "user.email=t@t", "-c", "user.name=t", "commit", "-q", "--allow-empty", "-m", "init"], work, env)
    run([str(BIN / "dvc"), "init", "-q"], work, env)
    for name in (".dvc/config", ".dvc/plots"):  # hydra composition for `dvc exp run -S`, the offline plot templates
        copy_path(REPO / name, work / name)
    run([sys.executable, "-m", "reasongen", "params", "experiment=tiny", "data.source=jsonl",
         f"data.jsonl_path={raw}", f"explain.data.shared_file={reviews}", "explain.data.sha256=null"], work, env)
    run([sys.executable, "-m", "reasongen", "data"], work, env)
    run([str(BIN / "dvc"), "add", "-q", "data"], work, env)
    repro = run([str(BIN / "dvc"), "repro"], work, env)
    # what `make run > log` shows: the stages' output goes to a pipe, not a terminal
    repro_log(work).write_text(repro.stdout + repro.stderr, encoding="utf-8")
    return work, env


# --- model servers on loopback ------------------------------------------------------------------------------------
def served(work, env, command: list[str]):
    """A model server (command + --host/--port) on a free loopback port, its tracking URI env's or else the
    pipeline copy's store; yields the base URL once /ping answers."""
    serve_env = {"MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}", **env,  # env's own URI wins
                 "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return server(command, work, serve_env)


def repro_log(work: Path) -> Path:
    """The output of the `pipeline` fixture's `dvc repro` (beside the copy, outside the repository)."""
    return work.parent / f"{work.name}-repro.log"
