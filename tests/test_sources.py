"""Materialising the raw rows from the shared copy, a user's JSON Lines file, or a (local) hub dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from reasongen.paths import SHARED_ENV, shared_root
from reasongen.sources import materialize

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before the lazy `import datasets`: nothing here may reach the hub

ROWS = [
    {"content": "类型#裙*颜色#蓝色", "summary": "蓝色的裙子清爽又显瘦，夏天穿很舒服。"},
    {"content": "类型#裤*版型#宽松", "summary": "宽松的裤子<UNK>穿着自在，百搭又时尚。"},
]
REAL_FILE = shared_root() / "data/advertisegen/train_head5000.json"
OLD = 1_000_000_000  # an mtime far in the past, to see whether a file was rewritten


def data_cfg(**settings: object) -> DictConfig:
    base = {"source": "shared", "shared_file": "data/rows.jsonl", "jsonl_path": None, "hub_id": None}
    return OmegaConf.create({**base, "hub_split": "train", **settings})


def jsonl_bytes(rows: list[dict]) -> bytes:
    return b"".join(json.dumps(row, ensure_ascii=False).encode() + b"\n" for row in rows)


@pytest.fixture
def shared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A shared root holding data/rows.jsonl, selected through the environment variable."""
    root = tmp_path / "shared"
    (root / "data").mkdir(parents=True)
    (root / "data" / "rows.jsonl").write_bytes(jsonl_bytes(ROWS) + b"not json, kept as it is\n")
    monkeypatch.setenv(SHARED_ENV, str(root))
    return root


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep load_dataset's cache inside the test folder."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def test_shared_copy_is_byte_identical_and_only_rewritten_on_change(shared: Path, tmp_path: Path) -> None:
    out = tmp_path / "data" / "raw" / "advertisegen.jsonl"
    assert materialize(data_cfg(), out) == out
    assert out.read_bytes() == (shared / "data" / "rows.jsonl").read_bytes()
    os.utime(out, (OLD, OLD))
    materialize(data_cfg(), out)
    assert out.stat().st_mtime == OLD  # same content: untouched
    (shared / "data" / "rows.jsonl").write_bytes(jsonl_bytes(ROWS[:1]))
    materialize(data_cfg(), out)
    assert out.read_bytes() == jsonl_bytes(ROWS[:1]) and out.stat().st_mtime != OLD
    assert sorted(path.name for path in out.parent.iterdir()) == ["advertisegen.jsonl"]  # no temporary left


def test_missing_shared_file_names_path_and_variable(shared: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as caught:
        materialize(data_cfg(shared_file="data/absent.json"), tmp_path / "raw.jsonl")
    message = str(caught.value)
    assert str(shared / "data" / "absent.json") in message and SHARED_ENV in message
    assert not (tmp_path / "raw.jsonl").exists()


def test_jsonl_source_copies_the_users_file(tmp_path: Path) -> None:
    mine = tmp_path / "mine.jsonl"
    mine.write_bytes(jsonl_bytes(ROWS))
    out = materialize(data_cfg(source="jsonl", jsonl_path=str(mine)), tmp_path / "raw.jsonl")
    assert out.read_bytes() == mine.read_bytes()
    with pytest.raises(ValueError, match="jsonl_path"):
        materialize(data_cfg(source="jsonl"), tmp_path / "raw.jsonl")
    with pytest.raises(FileNotFoundError, match="absent.jsonl"):
        materialize(data_cfg(source="jsonl", jsonl_path=str(tmp_path / "absent.jsonl")), tmp_path / "raw.jsonl")


def test_unknown_source_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shared, jsonl, hub"):
        materialize(data_cfg(source="ftp"), tmp_path / "raw.jsonl")


def test_hub_source_from_a_saved_dataset(tmp_path: Path) -> None:
    import datasets

    columns = {field: [row[field] for row in ROWS] for field in ("summary", "content")}  # other column order
    datasets.Dataset.from_dict({**columns, "extra": [1, 2]}).save_to_disk(str(tmp_path / "saved"))
    out = materialize(data_cfg(source="hub", hub_id=str(tmp_path / "saved")), tmp_path / "raw.jsonl")
    assert out.read_bytes() == jsonl_bytes(ROWS)  # keys content, summary; Chinese kept as UTF-8 characters
    first_only = {field: values[:1] for field, values in columns.items()}
    splits = {"train": datasets.Dataset.from_dict(columns), "dev": datasets.Dataset.from_dict(first_only)}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "saved-dict"))
    out = materialize(data_cfg(source="hub", hub_id=str(tmp_path / "saved-dict"), hub_split="dev"), out)
    assert out.read_bytes() == jsonl_bytes(ROWS[:1])


def test_hub_source_rejects_a_dataset_without_the_columns(tmp_path: Path) -> None:
    import datasets

    datasets.Dataset.from_dict({"text": ["x"]}).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(ValueError, match="content"):
        materialize(data_cfg(source="hub", hub_id=str(tmp_path / "saved")), tmp_path / "raw.jsonl")
    assert not (tmp_path / "raw.jsonl").exists()


def test_hub_source_from_a_json_file(tmp_path: Path, hf_cache: None) -> None:
    source = tmp_path / "rows.json"
    source.write_bytes(jsonl_bytes(ROWS))
    out = materialize(data_cfg(source="hub", hub_id=str(source)), tmp_path / "raw.jsonl")
    assert out.read_bytes() == source.read_bytes()


@pytest.mark.skipif(not REAL_FILE.is_file(), reason=f"shared AdvertiseGen file absent ({REAL_FILE})")
def test_hub_path_reproduces_the_shared_file_byte_for_byte(tmp_path: Path, hf_cache: None) -> None:
    out = materialize(data_cfg(source="hub", hub_id=str(REAL_FILE)), tmp_path / "raw.jsonl")
    # The shared file ends its lines with CRLF; records are written with LF, otherwise byte-identical.
    assert out.read_bytes().split(b"\n") == REAL_FILE.read_bytes().split(b"\r\n")
