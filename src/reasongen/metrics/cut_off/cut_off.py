"""Cut-off clauses: texts with a clause that ends on a word needing a continuation (肩带各有两个纽扣和，) or a
sentence that lost its beginning (。烘托纤细的腰身)."""

import evaluate

from reasongen.metrics.module_info import metric_info, percent
from reasongen.metrics.text_quality import cut_off_clauses

_DESCRIPTION = """cut_off_rate = share of texts (×100) with a clause cut off (reasongen.metrics.text_quality.
cut_off_clauses): one that ends, before any clause punctuation, on 和 / 与 / 以及 / 将 / 让 / 把 / 被 / 对于 / 不仅 /
能够 / 一下子就 (柔和, 亲和, 当仁不让 and the like aside), or before a full stop on 的是 / 同时 / 而且 / 并且 / 但是 /
因为 / 所以; or a sentence that opens on a predicate and so has no subject (。呈现出…, 。烘托…: text_quality.
headless_sentences); or a correlative's first half (既, 不但, 不仅) with no second half in its sentence
(unpaired_correlatives). The 5,000 human references: 0.4% for the first kind, 3% with all three."""

_KWARGS = "predictions: generated texts."


class CutOff(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return metric_info(_DESCRIPTION, _KWARGS, "predictions")

    def _compute(self, predictions: list[str]) -> dict[str, float]:
        return {"cut_off_rate": percent(bool(cut_off_clauses(text)) for text in predictions)}
