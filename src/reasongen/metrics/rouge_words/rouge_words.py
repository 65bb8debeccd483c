"""ROUGE-1/2/L F on whitespace tokens, PETER's definition (its rouge.py, sentence level, averaged), ×100."""

import datasets
import evaluate

_DESCRIPTION = """PETER/PEPLER's ROUGE (their rouge.py, after the Google seq2seq code): per prediction-reference pair
on whitespace tokens, ROUGE-N uses the SETS of n-grams: P = |common| / |prediction n-grams|,
R = |common| / |reference n-grams|, F = 2PR / (P + R + 1e-8); ROUGE-L uses the longest common subsequence:
R = lcs / |reference|, P = lcs / |prediction|, beta = P / (R + 1e-12), F = (1 + beta^2) R P / (R + beta^2 P + 1e-12).
Each F is averaged over pairs, ×100. An empty text scores 0."""

_KWARGS = """predictions: generated texts; references: one reference per prediction.
Returns {"rouge1", "rouge2", "rougeL"} (F-scores)."""


def rouge_n(prediction: list[str], reference: list[str], n: int) -> float:
    ours = {tuple(prediction[i : i + n]) for i in range(len(prediction) - n + 1)}
    theirs = {tuple(reference[i : i + n]) for i in range(len(reference) - n + 1)}
    if not ours or not theirs:
        return 0.0
    common = len(ours & theirs)
    precision, recall = common / len(ours), common / len(theirs)
    return 2 * precision * recall / (precision + recall + 1e-8)


def lcs_length(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: list[str], reference: list[str]) -> float:
    if not prediction or not reference:
        return 0.0
    lcs = lcs_length(reference, prediction)
    recall, precision = lcs / len(reference), lcs / len(prediction)
    beta = precision / (recall + 1e-12)
    return (1 + beta**2) * recall * precision / (recall + beta**2 * precision + 1e-12)


class RougeWords(evaluate.Metric):
    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION, citation="", inputs_description=_KWARGS,
            features=datasets.Features({"predictions": datasets.Value("string"),
                                        "references": datasets.Value("string")}))

    def _compute(self, predictions: list[str], references: list[str]) -> dict[str, float]:
        pairs = [(p.split(), r.split()) for p, r in zip(predictions, references, strict=True)]
        if not pairs:
            return {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}

        def mean(values):
            return 100.0 * sum(values) / len(pairs)

        return {"rouge1": mean(rouge_n(p, r, 1) for p, r in pairs), "rouge2": mean(rouge_n(p, r, 2) for p, r in pairs),
                "rougeL": mean(rouge_l(p, r) for p, r in pairs)}
