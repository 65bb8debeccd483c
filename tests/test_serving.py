"""Request records -> generation rows, as the CLI and the served pyfunc models read them (pandas fills gaps with NaN),
and the serving limits, param defaults and one-line errors of src/reasongen/serving.py."""

from __future__ import annotations

import math
import os

import pytest
from mlflow.exceptions import MlflowException

from reasongen import processes, serving
from reasongen.adgen.generator import request_row
from reasongen.adgen.prompts import prompt_for_row
from reasongen.explain.generator import request_row as explain_row
from reasongen.serving import check_request, one_line

LIMITS = {"max_rows": 2, "max_body_bytes": 1000, "max_field_chars": 20, "max_new_tokens": 16}


def test_missing_fields_become_no_control() -> None:
    row = request_row({"content": "类型#裙", "aspect": math.nan, "length_bucket": None, "keywords": math.nan})
    assert row == {"content": "类型#裙", "aspect": None, "length_bucket": None, "keywords": []}
    assert prompt_for_row(row) == prompt_for_row({"content": "类型#裙"})


def test_keywords_as_list_or_comma_separated_text() -> None:
    assert request_row({"content": "类型#裙", "keywords": "气质， 显瘦、修身"})["keywords"] == ["气质", "显瘦", "修身"]
    assert request_row({"content": "类型#裙", "keywords": ["气质", ""]})["keywords"] == ["气质"]
    assert request_row({"content": "类型#裙", "aspect": " 显瘦 ", "length_bucket": "short"})["aspect"] == "显瘦"


@pytest.mark.parametrize(("record", "reason"), [
    ({"title": "no content"}, 'non-empty string field "content"'),
    ({"content": 7}, 'non-empty string field "content"'),
    ({"content": "连衣裙 蓝色"}, "key#value"),
    ({"content": "类型#裙", "length_bucket": "huge"}, "length_bucket 'huge' is not one of short, medium, long"),
    ({"content": "类型#裙", "aspect": "好看"}, "aspect '好看' is not one of"),
    ({"content": "类型#裙", "aspect": 3}, "aspect 3 is not one of"),
    ({"content": "类型#裙", "keywords": ["气质", 3]}, "keywords"),
])
def test_bad_request_rows_say_what_is_wrong(record: dict, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        request_row(record)


def test_explain_rows_need_ids_and_a_text_feature() -> None:
    assert explain_row({"user_id": " u1 ", "item_id": 42, "feature": math.nan}) == {
        "user_id": "u1", "item_id": "42", "feature": None}
    for record in ({"item_id": "B1"}, {"user_id": "u1", "item_id": " "}, {"user_id": True, "item_id": "B1"},
                   {"user_id": "u1", "item_id": "B1", "feature": ["sound"]}):
        with pytest.raises(ValueError):
            explain_row(record)


@pytest.mark.parametrize(("records", "params", "reason"), [
    ([], None, "no rows"),
    ([{"content": "类型#裙"}] * 3, None, "3 rows in one request; at most serving.max_rows=2"),
    ([{"content": "类型#裙*颜色#" + "蓝" * 30}], None, "row 0: content has 38 characters; at most serving.max_field"),
    ([{"content": "类型#裙"}], {"max_new_tokens": 17}, "max_new_tokens=17"),
    ([{"content": "类型#裙"}], {"max_new_tokens": 0}, "max_new_tokens=0"),
    ([{"content": "类型#裙"}], {"temperature": 0.0}, "temperature=0.0"),
    ([{"content": "类型#裙"}], {"top_p": 1.5}, "top_p=1.5"),
])
def test_requests_over_a_limit_are_refused_with_the_limit(records, params, reason) -> None:
    with pytest.raises(MlflowException, match=reason) as refused:
        check_request(records, params, LIMITS)
    assert refused.value.get_http_status_code() == 400


def test_requests_within_limits_pass_and_null_means_no_limit() -> None:
    assert check_request([{"content": "类型#裙"}] * 2, {"max_new_tokens": 16}, LIMITS) == {"max_new_tokens": 16}
    assert check_request([{"content": "类型#裙"}] * 50, {"max_new_tokens": 999}, {}) == {"max_new_tokens": 999}


def test_param_defaults_are_the_registered_decoding() -> None:
    schema = serving.decoding_params({"do_sample": False, "max_new_tokens": 12, "temperature": 0.95, "top_p": 0.7})
    assert {spec.name: spec.default for spec in schema.params} == {
        "do_sample": False, "max_new_tokens": 12, "temperature": 0.95, "top_p": 0.7}


def test_limits_are_checked_against_the_decoding() -> None:
    assert serving.check_limits(LIMITS, {"max_new_tokens": 16}) == LIMITS
    with pytest.raises(ValueError, match="max_new_tokens=32 is over serving.max_new_tokens=16"):
        serving.check_limits(LIMITS, {"max_new_tokens": 32})
    with pytest.raises(ValueError, match="serving.max_rows=0"):
        serving.check_limits({**LIMITS, "max_rows": 0}, {"max_new_tokens": 1})


def test_server_messages_become_one_line() -> None:
    wrapped = ("Failed to predict data '  content\n0    类型#裙'. \nError: row 0: length_bucket 'huge' is not one of "
               "short, medium, long")
    assert one_line(wrapped) == "row 0: length_bucket 'huge' is not one of short, medium, long"
    assert one_line("Invalid input.\nInput: \nb'{not'") == "Invalid input."
    assert len(one_line("x" * 5000)) == serving.MAX_MESSAGE_CHARS


class _Echo:
    """A stand-in model: each text names the process that wrote it; overrides {"fail": True} raise."""

    def write(self, rows, overrides):
        if overrides.get("fail"):
            raise ValueError("bad row\nsecond line")
        return [f"{os.getpid()}:{row['content']}" for row in rows]


@pytest.mark.skipif(not processes.can_fork(), reason="the copies are forked")
def test_the_writer_pool_writes_in_forked_copies_and_answers_their_errors_in_one_line() -> None:
    pool = serving.WriterPool(_Echo(), 2)
    try:
        texts = pool.write([{"content": "a"}, {"content": "b"}], {})
        assert [text.split(":", 1)[1] for text in texts] == ["a", "b"]
        assert int(texts[0].split(":")[0]) != os.getpid()  # written by a copy, not here
        with pytest.raises(RuntimeError, match=r"^bad row$"):
            pool.write([{"content": "a"}], {"fail": True})
        assert pool.write([{"content": "c"}], {})[0].endswith(":c")  # a failed request leaves the copies working
    finally:
        pool.executor.shutdown()


def test_a_refused_body_is_read_to_its_end_before_the_413() -> None:
    # found in CI: a 1 MB body got a broken pipe instead of the 413, when the server closed the connection with the
    # client's bytes unread; the guard now reads (and drops) the rest before it answers
    import asyncio

    def chunks(declared: bool):
        sent: list[str] = []
        messages = [{"type": "http.request", "body": b"x" * 1000, "more_body": True} for _ in range(9)]
        messages.append({"type": "http.request", "body": b"x" * 1000, "more_body": False})

        async def receive():
            sent.append("read")
            return messages.pop(0)

        async def send(message):
            sent.append(message["type"])

        headers = [(b"content-length", b"10000")] if declared else []
        scope = {"type": "http", "path": "/invocations", "headers": headers}
        asyncio.run(serving.Guard(None, max_body_bytes=2500, param_names=())(scope, receive, send))
        return sent, messages

    for declared in (True, False):
        sent, left = chunks(declared)
        assert left == [] and sent[-2:] == ["http.response.start", "http.response.body"], sent
