"""Stage `prepare`: validation and quarantine, normalisation, the attribute-set split, controls, stats."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from reasongen import rows
from reasongen.adgen import dataset
from reasongen.config import compose
from reasongen.io import read_json, read_jsonl, sha256_file
from reasongen.paths import shared_root
from reasongen.stages import prepare
from reasongen.text import controls
from reasongen.text.attributes import attribute_set_key, parse_content

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
OUTPUTS = ("train.jsonl", "val.jsonl", "test.jsonl", "quarantine.jsonl", "stats.json", "split_manifest.json")
SUMMARY = "这款连衣裙版型修身显瘦，面料柔软亲肤，穿着舒适自在，适合日常通勤。"


@lru_cache(maxsize=1)
def _base_cfg() -> DictConfig:
    return compose([], config_dir=CONF_DIR)


def make_cfg(*overrides: str) -> DictConfig:
    """The project's composed config with dotlist overrides (`data.split.seed=7`)."""
    return OmegaConf.merge(_base_cfg(), OmegaConf.from_dotlist(list(overrides)))


def line(content: object, summary: object = SUMMARY) -> bytes:
    return json.dumps({"content": content, "summary": summary}, ensure_ascii=False).encode() + b"\n"


def product(index: int, kind: str = "裙") -> str:
    """A distinct attribute set per index."""
    return f"类型#{kind}*颜色#色{index}*风格#简约"


def write_raw(path: Path, lines: list[bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(lines))
    return path


def run_prepare(tmp_path: Path, lines: list[bytes], *overrides: str, out: str = "prepared") -> dict:
    raw = write_raw(tmp_path / "raw.jsonl", lines)
    return prepare.run(make_cfg(*overrides), raw_path=raw, out_dir=tmp_path / out)


def split_rows(out_dir: Path) -> dict[str, list[dict]]:
    return {name: read_jsonl(out_dir / f"{name}.jsonl") for name in dataset.SPLITS}


def test_normalize_text_and_summary() -> None:
    assert rows.normalize_text("  cafe\u0301 \t 很\u3000好\n ") == "café 很 好"
    # the placeholders go; where they were is kept (before 显, before 的, before 裙: the spaces collapse)
    assert dataset.normalize_summary("<UNK>显瘦<UNK>的 <UNK> 裙子 ") == ("显瘦的 裙子", [0, 2, 4])
    assert dataset.normalize_summary("显瘦<UNK><UNK>。<UNK>") == ("显瘦。", [2, 3])
    assert dataset.normalize_summary("没有占位符") == ("没有占位符", [])


BAD_LINES = {
    2: (b'{"content": "\xe7\xb1\xbb\xe5\x9e\x8b#\xff\xfe", "summary": "x"}\n', "invalid utf-8"),
    3: (b'{"content": "\xe7\xb1\xbb\xe5\x9e\x8b#\xe8\xa3\x99", "summary": \n', "invalid json"),
    4: (b"[1, 2]\n", "not an object"),
    5: (json.dumps({"content": "类型#裙"}).encode() + b"\n", "missing field"),
    6: (line("类型#裙", 12345), "wrong type"),
    7: (line("类型裙*颜色#红色"), "bad attributes"),
    8: (line("类型#裙", "<UNK> "), "summary too short"),
    9: (line("类型#裙", "好" * 401), "summary too long"),
    10: (b"   \n", "blank line"),
    11: (line("类型#裙", "显瘦的裙子\x07非常好看又舒适"), "control characters"),
    12: (line("类型#裙*" + "*".join(f"颜色#色{i}" for i in range(80))), "content too long"),
    13: (line(None), "wrong type"),
}


def bad_file_lines() -> list[bytes]:
    """Good rows on lines 1 and 14 (CRLF), one bad row of each kind on lines 2-13, a good last line without newline."""
    lines = [line(product(1))]
    lines += [BAD_LINES[number][0] for number in sorted(BAD_LINES)]
    lines += [line(product(2)).replace(b"\n", b"\r\n"), line(product(3)).rstrip(b"\n")]
    return lines


ANY_SHARE = "data.max_quarantined_share=null"  # these files are mostly bad rows on purpose


def test_each_bad_row_is_quarantined_with_its_line_and_reason(tmp_path: Path) -> None:
    stats = run_prepare(tmp_path, bad_file_lines(), ANY_SHARE)
    quarantine = read_jsonl(tmp_path / "prepared" / "quarantine.jsonl")
    assert {record["line"]: record["reason"] for record in quarantine} == {
        number: reason for number, (_, reason) in BAD_LINES.items()
    }
    assert all(record["raw"] is not None and len(record["raw"]) <= rows.RAW_PREVIEW_CHARS for record in quarantine)
    assert "\ufffd" in next(record["raw"] for record in quarantine if record["line"] == 2)
    kept = [row for rows in split_rows(tmp_path / "prepared").values() for row in rows]
    assert sorted(row["line"] for row in kept) == [1, 14, 15]
    assert all(row["id"] == f"L{row['line']}" for row in kept)
    assert stats["rows_in"] == 15 == stats["kept"] + stats["quarantined"]
    assert (stats["kept"], stats["quarantined"]) == (3, 12)
    assert stats["quarantine_reasons"]["wrong type"] == 2
    assert sum(stats["quarantine_reasons"].values()) == 12


def test_quarantine_raw_is_truncated(tmp_path: Path) -> None:
    run_prepare(tmp_path, [line(product(1)), line("没有属性", "长" * 2000)], ANY_SHARE)
    (record,) = read_jsonl(tmp_path / "prepared" / "quarantine.jsonl")
    assert record["line"] == 2 and record["reason"] == "bad attributes"
    assert len(record["raw"]) == rows.RAW_PREVIEW_CHARS


def test_rows_are_normalised(tmp_path: Path) -> None:
    messy = line(" 类型 # 裙 *颜色#  蓝色 ", "  这条裙子<UNK>非常\t\t显瘦，  穿上很有气质。  ")
    run_prepare(tmp_path, [messy, line(product(1)), line(product(2))])
    row = next(row for rows in split_rows(tmp_path / "prepared").values() for row in rows if row["line"] == 1)
    assert row["content"] == "类型#裙*颜色#蓝色"
    assert row["attributes"] == [["类型", "裙"], ["颜色", "蓝色"]]
    assert row["summary"] == "这条裙子非常 显瘦， 穿上很有气质。"
    assert row["group"] == attribute_set_key(parse_content("颜色#蓝色*类型#裙"))


def test_max_rows_applies_before_validation(tmp_path: Path) -> None:
    stats = run_prepare(tmp_path, bad_file_lines(), "data.max_rows=4", ANY_SHARE)
    assert (stats["rows_in"], stats["kept"], stats["quarantined"]) == (4, 1, 3)


def test_rows_in_must_equal_kept_plus_quarantined(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows, "count_lines", lambda *_: 99)
    with pytest.raises(RuntimeError, match="99 rows in"):
        run_prepare(tmp_path, [line(product(1))])


def grouped_lines(n_products: int = 40) -> list[bytes]:
    """Products that repeat: duplicated content, and the same attributes in another order."""
    lines = []
    for index in range(n_products):
        pairs = product(index, kind=("裙", "裤", "上衣")[index % 3]).split("*")
        lines.append(line("*".join(pairs), f"第{index}款，" + SUMMARY))
        if index % 2 == 0:
            lines.append(line("*".join(pairs), f"同一款{index}的另一段文案，" + SUMMARY))
        if index % 3 == 0:
            lines.append(line("*".join(reversed(pairs)), f"属性顺序不同的第{index}款，" + SUMMARY))
    return lines


def test_no_attribute_set_is_in_two_splits(tmp_path: Path) -> None:
    stats = run_prepare(tmp_path, grouped_lines())
    rows = split_rows(tmp_path / "prepared")
    split_of_group: dict[str, set[str]] = {}
    for name, split in rows.items():
        for row in split:
            split_of_group.setdefault(row["group"], set()).add(name)
            assert row["group"] == attribute_set_key(parse_content(row["content"]))
    assert all(len(names) == 1 for names in split_of_group.values())
    assert len(split_of_group) == 40 == stats["groups"]
    assert all(stats["splits"][name]["rows"] > 0 for name in dataset.SPLITS)
    manifest = read_json(tmp_path / "prepared" / "split_manifest.json")
    for name in dataset.SPLITS:
        assert manifest["groups"][name] == sorted({row["group"] for row in rows[name]})
        assert manifest["sha256"][name] == sha256_file(tmp_path / "prepared" / f"{name}.jsonl")
        assert stats["splits"][name]["groups"] == len(manifest["groups"][name])


def test_same_seed_same_files_other_seed_other_split(tmp_path: Path) -> None:
    lines = grouped_lines()
    run_prepare(tmp_path, lines, "data.split.seed=1", out="a")
    run_prepare(tmp_path, lines, "data.split.seed=1", out="b")
    run_prepare(tmp_path, lines, "data.split.seed=2", out="c")
    for name in OUTPUTS:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    first, other = (read_json(tmp_path / out / "split_manifest.json") for out in ("a", "c"))
    assert (first["seed"], other["seed"]) == (1, 2)
    assert first["groups"]["test"] != other["groups"]["test"]
    assert sorted(sum(first["groups"].values(), [])) == sorted(sum(other["groups"].values(), []))


def test_split_groups_sizes_and_guards() -> None:
    keys = [f"k{index}" for index in range(3)]
    assert {name: len(group) for name, group in rows.split_groups(keys, 0.05, 0.1, 0).items()} == {
        "train": 1,
        "val": 1,
        "test": 1,
    }
    sizes = {name: len(group) for name, group in rows.split_groups(map(str, range(200)), 0.05, 0.1, 0).items()}
    assert sizes == {"train": 170, "val": 10, "test": 20}
    assert rows.split_groups(["only"], 0.05, 0.1, 0) == {"train": ["only"], "val": [], "test": []}
    with pytest.raises(ValueError, match="fractions"):
        rows.split_groups(keys, 0.5, 0.5, 0)


def test_control_signals_are_derived(tmp_path: Path) -> None:
    slim = "修身显瘦的版型，显瘦又显高，藏肉效果好，搭配高跟鞋更显瘦。"
    stats = run_prepare(tmp_path, [line("类型#裙*版型#修身", slim), *grouped_lines(12)])
    rows = [row for split in split_rows(tmp_path / "prepared").values() for row in split]
    n_keywords = make_cfg().data.controls.n_keywords
    bounds = make_cfg().data.controls.length_bounds
    for row in rows:
        assert row["aspect"] is None or row["aspect"] in controls.aspect_lexicon()
        assert row["length_bucket"] == controls.length_bucket(len(row["summary"]), bounds)
        assert 0 < len(row["keywords"]) <= n_keywords
        assert not {value for _, value in row["attributes"]} & set(row["keywords"])
    slim_row = next(row for row in rows if row["line"] == 1)
    assert slim_row["aspect"] == "显瘦"
    assert "修身" not in slim_row["keywords"]  # an attribute value is never a keyword
    for name in dataset.SPLITS:
        split = stats["splits"][name]
        assert sum(split["aspects"].values()) == sum(split["length_buckets"].values()) == split["rows"]
        assert set(split["length_buckets"]) == set(controls.LENGTH_BUCKETS)


def test_missing_raw_file_says_how_to_make_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="make data"):
        prepare.run(make_cfg(), raw_path=tmp_path / "absent.jsonl", out_dir=tmp_path / "out")


REAL_FILE = shared_root() / "data/advertisegen/train_head5000.json"


@pytest.mark.skipif(not REAL_FILE.is_file(), reason=f"shared AdvertiseGen file absent ({REAL_FILE})")
def test_first_300_real_rows(tmp_path: Path) -> None:
    with open(REAL_FILE, "rb") as handle:
        head = [handle.readline() for _ in range(300)]
    stats = run_prepare(tmp_path, head)
    assert (stats["rows_in"], stats["kept"], stats["quarantined"]) == (300, 300, 0)
    rows = split_rows(tmp_path / "prepared")
    assert sum(len(split) for split in rows.values()) == 300
    assert all(len(split) > 0 for split in rows.values())
    groups = [{row["group"] for row in split} for split in rows.values()]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    summaries = [row["summary"] for split in rows.values() for row in split]
    assert not any(dataset.UNK in summary for summary in summaries)
    first = next(row for row in rows["train"] + rows["val"] + rows["test"] if row["line"] == 1)
    assert first["content"] == "类型#裤*版型#宽松*风格#性感*图案#线条*裤型#阔腿裤"
    assert first["summary"].startswith("宽松的阔腿裤这两年真的吸粉不少")


@pytest.mark.parametrize("lines", [[], [b"{not json\n", b"[1]\n", line("没有属性")]], ids=["empty", "all bad"])
def test_prepare_stops_when_no_row_is_usable_and_keeps_the_reasons(tmp_path: Path, lines: list[bytes]) -> None:
    with pytest.raises(ValueError, match="no usable row among") as stopped:
        run_prepare(tmp_path, lines)
    assert len(read_jsonl(tmp_path / "prepared" / "quarantine.jsonl")) == len(lines)  # written before the stop
    assert "\n" not in str(stopped.value)


def test_prepare_stops_past_the_quarantined_share(tmp_path: Path) -> None:
    lines = [line(product(i)) for i in range(3)] + [b"{not json\n", b"[1]\n"]
    with pytest.raises(ValueError, match=r"2 of 5 rows quarantined \(40%, more than data.max_quarantined_share=0.25\)"
                       r" \(invalid json 1, not an object 1"):
        run_prepare(tmp_path, lines)
    assert run_prepare(tmp_path, lines, "data.max_quarantined_share=0.5")["quarantined"] == 2


def test_the_stage_command_stops_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    from reasongen.cli import main

    write_raw(tmp_path / prepare.RAW_PATH, [b"{not json\n", b"\xff\n"])
    monkeypatch.chdir(tmp_path)  # no dvc.yaml here: the stage gets every param
    assert main(["stage", "prepare", "--params", str(CONF_DIR.parent / "params.yaml")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # above it: the progress bar
    assert last.startswith("data/advertisegen.jsonl: no usable row among 2 line(s) (invalid json 1, invalid utf-8 1")
