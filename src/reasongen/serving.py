"""Serving in one place, for both tasks' pyfunc models: the request limits (config `serving`, registered with each
model), the decoding params a request may send (their defaults are the registered decoding, so that a request
without params decodes as the pipeline evaluated), and `reasongen serve`: MLflow's scoring server behind a guard
that refuses an oversized body before reading it, refuses unknown params, and answers every error with one line."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import mlflow.pyfunc

LIMIT_KEYS = ("max_rows", "max_body_bytes", "max_field_chars", "max_new_tokens")
# torch's random generator is process-wide: two requests decoding at once would draw from each other's seed, so
# one request generates at a time (the server's event loop stays free to answer others, e.g. /ping)
GENERATE_LOCK = threading.Lock()
MAX_MESSAGE_CHARS = 300
Row = dict[str, Any]


def request_error(message: str) -> Exception:
    """What a served model raises for a bad request: MLflow answers it with HTTP 400 and this message."""
    from mlflow.exceptions import INVALID_PARAMETER_VALUE, MlflowException

    return MlflowException(message, error_code=INVALID_PARAMETER_VALUE)


def decoding_params(generation: Mapping[str, Any]):
    """The params a request may send, with the registered decoding's values as their defaults: MLflow fills in the
    defaults for every request, so hard-coded ones would override the decoding the model was evaluated with."""
    from mlflow.types.schema import ParamSchema, ParamSpec

    return ParamSchema([ParamSpec("do_sample", "boolean", bool(generation["do_sample"])),
                        ParamSpec("max_new_tokens", "long", int(generation["max_new_tokens"])),
                        ParamSpec("temperature", "double", float(generation["temperature"])),
                        ParamSpec("top_p", "double", float(generation["top_p"]))])


def check_limits(limits: Mapping[str, Any], generation: Mapping[str, Any]) -> dict[str, Any]:
    """The limits to register with a model (each a positive integer or null: none); the model's own decoding must
    be within them, or every request without params would be refused."""
    from reasongen.errors import UserError

    found = {key: limits.get(key) for key in LIMIT_KEYS}
    for key, value in found.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise UserError(f"serving.{key}={value!r}: a limit is a positive integer (or null: no limit)")
    cap = found["max_new_tokens"]
    if cap is not None and int(generation["max_new_tokens"]) > cap:
        raise UserError(f"the decoding's max_new_tokens={generation['max_new_tokens']} is over "
                        f"serving.max_new_tokens={cap}: every request without params would be refused")
    return found


def check_request(records: list[dict[str, Any]], params: Mapping[str, Any] | None,
                  limits: Mapping[str, Any]) -> dict[str, Any]:
    """The request's decoding params if the request is within `limits` (a missing or null limit: none), else
    request_error naming the limit."""
    if not records:
        raise request_error("the request has no rows")
    cap = limits.get("max_rows")
    if cap is not None and len(records) > cap:
        raise request_error(f"{len(records)} rows in one request; at most serving.max_rows={cap} (split the rows "
                            "over several requests, or use `reasongen generate` for a file)")
    cap = limits.get("max_field_chars")
    for index, record in enumerate(records):
        for field, value in record.items():
            if cap is not None and isinstance(value, str) and len(value) > cap:
                raise request_error(f"row {index}: {field} has {len(value)} characters; at most "
                                    f"serving.max_field_chars={cap}")
    params = dict(params or {})
    tokens, cap = params.get("max_new_tokens"), limits.get("max_new_tokens")
    if tokens is not None and (tokens < 1 or (cap is not None and tokens > cap)):
        raise request_error(f"max_new_tokens={tokens}; it must be 1..{cap if cap is not None else 'any'} "
                            "(serving.max_new_tokens)")
    if params.get("temperature") is not None and not params["temperature"] > 0:
        raise request_error(f"temperature={params['temperature']}; it must be above 0")
    if params.get("top_p") is not None and not 0 < params["top_p"] <= 1:
        raise request_error(f"top_p={params['top_p']}; it must be in (0, 1]")
    return params


def request_rows(model_input: Any, params: Mapping[str, Any] | None, limits: Mapping[str, Any],
                 request_row: Callable[[Row], Row]) -> tuple[list[Row], dict[str, Any]]:
    """(rows, decoding params) of a request to a pyfunc model: within limits (check_request), each record made a row
    by the task's request_row; else request_error naming the row and what is wrong with it."""
    records = model_input.to_dict(orient="records") if hasattr(model_input, "to_dict") else list(model_input)
    overrides = check_request(records, params, limits)
    rows = []
    for index, record in enumerate(records):
        try:
            rows.append(request_row(record))
        except ValueError as error:
            raise request_error(f"row {index}: {error}") from None
    return rows, overrides


def one_line(message: str) -> str:
    """A server error message as one line: MLflow's wrapping ("Failed to predict data '<the rows>'. Error: ...")
    and anything after the first line dropped, at most MAX_MESSAGE_CHARS."""
    reason = message.rsplit("Error: ", 1)[-1] if "Error: " in message else message
    lines = [line.strip() for line in reason.strip().splitlines() if line.strip()]
    return (lines[0] if lines else "error")[:MAX_MESSAGE_CHARS]


class Guard:
    """ASGI wrapper of the scoring app for /invocations: a body over max_body_bytes gets 413 without being kept (by
    its Content-Length, or as it streams in; the rest is read and thrown away first, see DISCARD_BYTES), params the
    model does not take get 400, and every error response becomes `{"error_code", "message"}` with a one-line
    message and no stack trace."""

    def __init__(self, app, max_body_bytes: int | None, param_names: Iterable[str]):
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.param_names = set(param_names)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != "/invocations":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length", b"").decode() or None
        cap = self.max_body_bytes
        if cap is not None and declared is not None and declared.isdigit() and int(declared) > cap:
            await discard(receive)
            await reply(send, 413, "REQUEST_TOO_LARGE", f"request body of {declared} bytes; at most "
                        f"serving.max_body_bytes={cap}")
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if cap is not None and len(body) > cap:
                if message.get("more_body"):
                    await discard(receive)
                await reply(send, 413, "REQUEST_TOO_LARGE", f"request body over serving.max_body_bytes={cap} bytes")
                return
            if not message.get("more_body"):
                break
        problem = self.unknown_params(bytes(body), headers.get(b"content-type", b""))
        if problem:
            await reply(send, 400, "INVALID_PARAMETER_VALUE", problem)
            return
        await self.app(scope, replay(bytes(body), receive), one_line_errors(send))

    def unknown_params(self, body: bytes, content_type: bytes) -> str | None:
        """Why the request's params are not the model's (MLflow would silently ignore unknown ones), or None."""
        if not content_type.startswith(b"application/json"):
            return None
        try:
            request = json.loads(body)
        except ValueError:
            return None  # MLflow answers a body that is not JSON
        params = request.get("params") if isinstance(request, dict) else None
        if params is None:
            return None
        if not isinstance(params, dict):
            return f"params must be an object of {sorted(self.param_names)}"
        unknown = sorted(set(params) - self.param_names)
        return f"unknown param(s) {unknown}; this model takes {sorted(self.param_names)}" if unknown else None


def replay(body: bytes, receive):
    """An ASGI receive that hands the app the body already read, then passes on (disconnects)."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive_again():
        return pending.pop() if pending else await receive()

    return receive_again


def one_line_errors(send):
    """An ASGI send that passes successful responses on and rewrites error responses into one-line JSON."""
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def send_rewritten(message) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            if start["status"] < 400:
                await send(message)
            return
        if message["type"] != "http.response.body" or start.get("status", 200) < 400:
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        text = b"".join(chunks).decode("utf-8", errors="replace")
        try:
            found = json.loads(text)
            code = found.get("error_code", "BAD_REQUEST")
            reason = str(found.get("message") or found.get("detail") or text)
        except (ValueError, AttributeError):
            code, reason = "BAD_REQUEST" if start["status"] < 500 else "INTERNAL_ERROR", text
        await reply(send, start["status"], code, one_line(reason))

    return send_rewritten


# A refused body is read and thrown away up to this much before the 413 goes out: a server that closes a connection
# with unread bytes resets it, and a client still sending then sees a broken pipe instead of the answer (seen once
# in the serving test with a 1 MB body). A client sending more than this gets the answer and a closed connection.
DISCARD_BYTES = 16 * 2**20


async def discard(receive, limit: int = DISCARD_BYTES) -> None:
    """Read the rest of a request body without keeping it, up to limit bytes (or until the client goes)."""
    seen = 0
    while seen <= limit:
        message = await receive()
        seen += len(message.get("body", b""))
        if message["type"] == "http.disconnect" or not message.get("more_body"):
            return


async def reply(send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error_code": code, "message": message}, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def serve(model_uri: str, host: str, port: int, limits: Mapping[str, Any] | None = None,
          trust_remote_code: bool = False) -> None:
    """`reasongen serve`: the registered pyfunc model on MLflow's scoring app (/invocations, /ping, /version) behind
    the Guard. limits: changes to the registered ones; trust_remote_code: let the model folder's own code run."""
    import torch
    import uvicorn
    from mlflow.pyfunc import scoring_server

    from reasongen import processes, threads, tracking

    tracking.configure()
    registered = tracking.load_pyfunc(model_uri, trust_remote_code=trust_remote_code, limits=limits)
    config = registered.model_config or {}
    effective = check_limits(config.get("limits") or {}, config.get("generation") or {"max_new_tokens": 1})
    app = Guard(scoring_server.init(registered), effective.get("max_body_bytes"),
                [spec.name for spec in registered.metadata.get_params_schema().params])
    served = registered.unwrap_python_model()
    parameters = sum(weight.numel() for weight in served.generator.model.parameters())
    torch.set_num_threads(threads.serving_threads(parameters))
    count = threads.serving_processes(torch.get_num_threads()) if processes.can_fork() else 1
    advice = threads.serving_advice(parameters, torch.get_num_threads(), count)
    if advice:
        print(advice, flush=True)
    warm_up(registered)
    print(f"serving {model_uri} on http://{host}:{port}/invocations with limits {effective}, texts written by "
          f"{count} process(es) of {torch.get_num_threads()} torch thread(s) (REASONGEN_SERVE_PROCESSES and "
          "REASONGEN_THREADS set them)", flush=True)
    if count > 1:
        served.pool = WriterPool(served, count)
    # a bounded graceful shutdown: SIGTERM ends the server even while a request is still generating
    config = uvicorn.Config(app, host=host, port=port, timeout_graceful_shutdown=10, log_level="warning")
    uvicorn.Server(config).run()


def warm_up(registered) -> None:
    """Answer the registered input example once: the first request's one-off work (jieba's dictionary, the clause
    index of retrieve-and-edit) is then done before any request, and before the writing copies fork, once."""
    example = registered.input_example
    if example is None:
        return
    try:
        registered.predict(example)
    except Exception as error:  # noqa: BLE001 - the server still starts; the first request will show the same error
        print(f"warning: the model could not answer its own input example ({one_line(str(error))})", flush=True)


class WriterPool:
    """`processes` forked copies of a loaded model that write the texts of requests in turn, while this process
    answers HTTP: each request goes to the first copy that is free (one shared queue). Forked servers sharing a
    listening socket each accepted connections while busy, so a request could wait behind another one although a
    second server was idle (p99 twice the median). The copies share the weights copy-on-write; each ends when this
    process is gone (killed outright, it could not tell them)."""

    def __init__(self, model: GeneratorModel, processes: int):
        from concurrent.futures import ProcessPoolExecutor
        from multiprocessing import get_context

        global _FORKED
        _FORKED = model  # what the forked copies write with
        self.executor = ProcessPoolExecutor(processes, mp_context=get_context("fork"), initializer=_start_copy,
                                            initargs=(os.getpid(),))
        self.executor.submit(os.getpid).result()  # fork every copy now, before the HTTP server starts its threads

    def write(self, rows: list[dict[str, Any]], overrides: dict[str, Any]) -> list[str]:
        from concurrent.futures.process import BrokenProcessPool

        try:
            outcome, found = self.executor.submit(_write_forked, rows, overrides).result()
        except BrokenProcessPool:
            raise RuntimeError("a server process ended unexpectedly (out of memory?); restart `reasongen serve`"
                               ) from None
        if outcome == "error":
            raise RuntimeError(found)
        return found


_FORKED: GeneratorModel | None = None
_WRITER: Any = None  # a forked copy's own thread that writes (see _start_copy)


def _write_forked(rows: list[dict[str, Any]], overrides: dict[str, Any]) -> tuple[str, Any]:
    """In a forked copy: ("ok", texts), or ("error", a one-line message) (an exception may not survive pickling)."""
    try:
        return "ok", _WRITER.submit(_FORKED.write, rows, overrides).result()
    except Exception as error:  # noqa: BLE001 - the server answers it as the in-process model would
        return "error", one_line(str(error) or type(error).__name__)


def _start_copy(parent: int) -> None:
    """A forked copy's start: it ends when `parent` is gone, and writes on a thread of its own. The thread that
    forked it ran torch (the warm-up), and OpenMP's threads do not survive a fork: torch on a forked thread that
    had used them waits for them forever, torch on a new thread starts its own."""
    from concurrent.futures import ThreadPoolExecutor

    global _WRITER
    _WRITER = ThreadPoolExecutor(1)
    threading.Thread(target=_end_with, args=(parent,), daemon=True).start()


def _end_with(parent: int) -> None:
    """Ask this process to stop (as SIGTERM does) once `parent` has gone."""
    while os.getppid() == parent:
        time.sleep(1)
    os.kill(os.getpid(), signal.SIGTERM)


ARTIFACT_KEY = "model_dir"  # the model folder's name among a registered model's artifacts


class GeneratorModel(mlflow.pyfunc.PythonModel):
    """What both tasks' pyfunc models share: the task's generator loaded from the registered folder with the
    registered decoding and limits (trust_remote_code only as the loader asks), and predict as request rows checked
    against those limits, generated one request at a time. A task sets `generator_class`, `request_row` and
    `write(rows, overrides)`."""

    generator_class: Any
    request_row: Callable[[dict[str, Any]], dict[str, Any]]
    pool: WriterPool | None = None  # forked copies that write (reasongen serve with several processes)

    def load_context(self, context) -> None:
        config = context.model_config or {}
        self.limits = config.get("limits") or {}
        self.generator = self.generator_class.from_dir(context.artifacts[ARTIFACT_KEY], config.get("generation", {}),
                                                       trust_remote_code=bool(config.get("trust_remote_code")))

    def predict(self, context, model_input, params: dict[str, Any] | None = None) -> list[str]:
        rows, overrides = request_rows(model_input, params, self.limits, type(self).request_row)
        if self.pool is not None:
            return self.pool.write(rows, overrides)
        with GENERATE_LOCK:  # torch's random generator is shared: one seeded decoding at a time
            return self.write(rows, overrides)

    def write(self, rows: list[dict[str, Any]], overrides: dict[str, Any]) -> list[str]:
        raise NotImplementedError
