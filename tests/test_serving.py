"""Request records -> generation rows, as the served pyfunc model reads them (pandas fills gaps with NaN)."""

from __future__ import annotations

import math

from reasongen.adgen.prompts import prompt_for_row
from reasongen.adgen.pyfunc import _as_row


def test_missing_fields_become_no_control() -> None:
    row = _as_row({"content": "类型#裙", "aspect": math.nan, "length_bucket": None, "keywords": math.nan})
    assert row == {"content": "类型#裙", "aspect": None, "length_bucket": None, "keywords": []}
    assert prompt_for_row(row) == prompt_for_row({"content": "类型#裙"})


def test_keywords_as_list_or_comma_separated_text() -> None:
    assert _as_row({"content": "c", "keywords": "气质， 显瘦、修身"})["keywords"] == ["气质", "显瘦", "修身"]
    assert _as_row({"content": "c", "keywords": ["气质", "", 3]})["keywords"] == ["气质"]
    assert _as_row({"content": "c", "aspect": " 显瘦 ", "length_bucket": "short"})["aspect"] == "显瘦"
