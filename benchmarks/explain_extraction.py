"""Task B extraction, mined (no lexicon, the default) against the curated musical-instrument lexicon, on the raw
reviews: how many curated features the miner finds (recall: any surface form of the curated feature among the mined
forms), the tuple yield of each, and a seeded random sample of mined features to judge by reading.

    python benchmarks/explain_extraction.py --sample 30 --out docs/explain_extraction.md

Run from the repository root (it reads params.yaml's explain section and the reviews under the shared root)."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from omegaconf import OmegaConf

from reasongen.config import load_params
from reasongen.explain import extraction
from reasongen.explain.reviews import review_row
from reasongen.paths import resource, shared_root
from reasongen.rows import validate_lines

CURATED = resource("explain_lexicon.yaml")


def tuple_yield(texts: list[str], lexicon: extraction.Lexicon, cfg) -> tuple[int, int]:
    """(features in the vocabulary, reviews that yield a tuple), as explain_prepare counts them."""
    vocabulary = extraction.mine_vocabulary(texts, lexicon, cfg.min_feature_count)
    restricted = lexicon.restricted(vocabulary)
    found = sum(extraction.extract(text, restricted, min_words=cfg.min_words, max_words=cfg.max_words,
                                   window=cfg.opinion_window) is not None for text in texts)
    return len(vocabulary), found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("docs/explain_extraction.md"))
    args = parser.parse_args()
    task = OmegaConf.create(load_params()["explain"])
    _, reviews, _ = validate_lines(shared_root() / task.data.shared_file, task.data.max_rows, review_row)
    texts = [review["text"] for review in reviews]
    mined_cfg = OmegaConf.merge(task.extraction, {"lexicon": None})
    mined = extraction.candidate_lexicon(texts, mined_cfg)
    curated = extraction.load_lexicon(CURATED)
    mined_forms = {form for forms in mined.features.values() for form in forms}
    found = sorted(name for name, forms in curated.features.items() if set(forms) & mined_forms)
    missed = sorted(set(curated.features) - set(found))
    (n_mined, mined_tuples), (n_curated, curated_tuples) = (tuple_yield(texts, lexicon, task.extraction)
                                                            for lexicon in (mined, curated))
    names = list(mined.features)
    sample = sorted(random.Random(args.seed).sample(names, min(args.sample, len(names))), key=names.index)
    lines = [
        f"# Task B extraction: mined vs curated ({len(texts)} reviews)", "",
        "| candidates | features in the vocabulary | reviews with a tuple |", "|---|---|---|",
        f"| mined (no lexicon) | {n_mined} | {mined_tuples} ({100 * mined_tuples / len(texts):.1f}%) |",
        f"| curated lexicon | {n_curated} | {curated_tuples} ({100 * curated_tuples / len(texts):.1f}%) |", "",
        f"Curated features the miner finds: **{len(found)} of {len(curated.features)}** "
        f"({100 * len(found) / len(curated.features):.0f}%).", "",
        f"Missed: {', '.join(missed)}.", "",
        f"Mined features, best first: {', '.join(names)}.", "",
        f"{len(sample)} mined features drawn at random (seed {args.seed}), to judge by reading:", "",
        *(f"- {name} ({', '.join(' '.join(form) for form in mined.features[name])})" for name in sample),
    ]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
