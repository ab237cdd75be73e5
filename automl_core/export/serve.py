"""REST scoring: ``python -m automl_core serve --model DIR/model.joblib --port 8080 [--api-key KEY]``.

``POST /predict`` takes a JSON list of records (or ``{"records": [...]}``) or a CSV body
(``Content-Type: text/csv``) and answers the predictions in row order, with the same check report
as the CLI and the studio. Missing required columns, unreadable bodies and empty tables are answered
422 with a readable ``detail``. ``GET /health`` says which model is loaded and warns about package
versions that differ from the ones it was saved with. FastAPI serves the OpenAPI schema at
``/openapi.json`` (and ``/docs``). With an API key, ``/predict`` needs it in the ``X-API-Key`` header
(401 otherwise); ``/health`` stays open for load balancers.

An image model (``task`` image_classification) takes images instead: ``multipart/form-data`` with one or
more files (images, or zips of images), or one zip / image as the raw body (``Content-Type:
application/zip`` or ``image/...``). It answers one prediction per image (``image_path``, ``prediction``,
``proba_<class>``) and what was dropped, by reason; a table sent to it is answered 422 saying so.
"""
from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.security import APIKeyHeader

from .artifacts import clean_json
from ..prepare.batch_featurize import clean_columns
from .drift_checks import check_input
from ..errors import AutoMLInputError
from .predict import load_model, predict_frame, required_columns, table_model, version_warnings

API_KEY_HEADER = "X-API-Key"
#: Largest request body accepted (bytes): bigger files belong to the CLI's batch ``predict``.
MAX_BODY_BYTES = 50 * 1024 * 1024
SMALL_REQUEST_ROWS = 1000


def _records_frame(body: bytes, content_type: str) -> pd.DataFrame:
    """The request body as a frame; AutoMLInputError says what is wrong with it."""
    if "csv" in content_type:
        from ..io.reader import read_table
        return read_table(body, name="request.csv")
    try:
        payload = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AutoMLInputError(f"The request body is not valid JSON ({exc.msg if hasattr(exc, 'msg') else exc})",
                               "send a JSON list of records, or CSV with Content-Type: text/csv") from exc
    if isinstance(payload, dict) and isinstance(payload.get("records"), list):
        payload = payload["records"]
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list) or not all(isinstance(r, dict) for r in payload):
        raise AutoMLInputError("The JSON body must be a list of records (objects of column: value)",
                               'send e.g. [{"age": 41, "job": "admin."}]')
    if not payload:
        raise AutoMLInputError("The request holds no records", "send at least one record")
    return pd.DataFrame.from_records(payload)


def _request_schema(card: dict[str, Any], required: list[str]) -> dict[str, Any]:
    """OpenAPI description of the body: one property per input column, typed from training."""
    kinds = {c["name"]: c.get("role") for c in card.get("features") or []}
    props = {col: {"type": "number"} if kinds.get(col) == "numeric" else {"type": "string"} for col in required}
    record = {"type": "object", "properties": props, "required": required,
              "additionalProperties": True, "description": "one row; extra columns are ignored"}
    return {"required": True, "content": {
        "application/json": {"schema": {"type": "array", "items": record}},
        "text/csv": {"schema": {"type": "string", "description": "a CSV table with a header row"}}}}


async def _bounded_body(request: Request, limit: int) -> bytes | None:
    """The request body, or None as soon as it is known to exceed ``limit`` bytes.

    The limit holds while reading: a declared Content-Length past it is refused before any byte is read,
    and a chunked body is refused at the chunk that crosses it, so a 2 GB upload is never held in memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


def create_app(model_path: str | Path, api_key: str | None = None) -> FastAPI:
    """The FastAPI application serving one saved model (loaded and checked once, here)."""
    model, card = load_model(model_path)
    images = card.get("task") == "image_classification"
    required = [] if images else required_columns(model, card)
    warnings_ = version_warnings(card)
    app = FastAPI(title="AutoML Studio model", version=str(card.get("format", "1")),
                  description=f"Predicts '{card.get('target')}' ({card.get('task')}) with the "
                              f"{card.get('best_model')} model trained by AutoML Studio."
                              + (" Send images (multipart files, or one zip / image as the body)." if images else ""))
    app.state.version_warnings = warnings_
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)

    def authorised(key: str | None = Depends(header)) -> None:
        if api_key and not (key and secrets.compare_digest(key.encode(), api_key.encode())):
            raise HTTPException(401, detail=f"Missing or wrong API key. Fix: send the key in the {API_KEY_HEADER} header.")

    @app.get("/health")
    def health() -> dict[str, Any]:
        return clean_json({"status": "warning" if warnings_ else "ok", "version_warnings": warnings_,
                           "target": card.get("target"), "task": card.get("task"), "model": card.get("best_model"),
                           "classes": card.get("classes"), "required_columns": required,
                           "model_sha256": card.get("model_sha256"), "validation": card.get("validation"),
                           "input": "images" if images else "table"})

    def score(body: bytes, content_type: str) -> Response:
        try:
            df = _records_frame(body, content_type)
            # cleaned once for both the check and the prediction (a request is usually a few rows)
            cleaned = clean_columns(table_model(model), df) if len(df) <= SMALL_REQUEST_ROWS else None
            report = check_input(df, table_model(model), card, cleaned=cleaned)
            if not report.ok:
                raise report.error()
            predictions = predict_frame(model, card, df, cleaned=cleaned)
        except AutoMLInputError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        answer = {"predictions": clean_json(predictions.to_dict(orient="records")),
                  "checks": report.summary_lines()[1:]}
        return Response(json.dumps(answer, default=str), media_type="application/json")

    def score_images(parts: list[tuple[str, bytes]]) -> Response:
        from ..images.uploads import score_uploads
        try:
            predictions, read = score_uploads(model, parts)
        except AutoMLInputError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=422)
        answer = {"predictions": clean_json(predictions.to_dict(orient="records")), "dropped": read.dropped,
                  "checks": [read.summary()]}
        return Response(json.dumps(answer, default=str), media_type="application/json")

    async def image_parts(request: Request, body: bytes) -> list[tuple[str, bytes]] | Response:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith("multipart/form-data"):
            from starlette.datastructures import UploadFile
            from starlette.requests import Request as Plain

            async def replay() -> Any:  # the body was already read (bounded); parse it again from memory
                return {"type": "http.request", "body": body, "more_body": False}
            form = await Plain(request.scope, replay).form(max_files=10_000)
            return [(v.filename or k, await v.read()) for k, v in form.multi_items() if isinstance(v, UploadFile)]
        if content_type.startswith(("application/zip", "application/x-zip", "image/", "application/octet-stream")):
            return [("upload.zip" if "zip" in content_type else "upload", body)]
        return JSONResponse({"detail": "This model classifies images; the request sent "
                                       f"{content_type or 'no Content-Type'}. Fix: send the images as multipart/form-data "
                                       "files (curl -F file=@photo.jpg -F file=@more.zip), or one zip as the body "
                                       "with Content-Type: application/zip."}, status_code=422)

    image_body = {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {"file": {
            "type": "array", "items": {"type": "string", "format": "binary"}}}}},
        "application/zip": {"schema": {"type": "string", "format": "binary"}}}}

    @app.post("/predict", dependencies=[Depends(authorised)],
              openapi_extra={"requestBody": image_body if images else _request_schema(card, required)},
              summary="Predict: JSON records or CSV in, predictions in row order out",
              responses={401: {"description": "API key missing or wrong"},
                         422: {"description": "the data does not fit the model (e.g. a required column is missing)"}})
    async def predict(request: Request) -> Response:
        body = await _bounded_body(request, MAX_BODY_BYTES)
        if body is None:
            return JSONResponse({"detail": f"The request body is larger than {MAX_BODY_BYTES / 2**20:g} MB. "
                                           "Fix: score large files with `python -m automl_core predict`."}, 413)
        if images:
            parts = await image_parts(request, body)
            if isinstance(parts, Response):
                return parts
            return await run_in_threadpool(score_images, parts)
        return await run_in_threadpool(score, body, request.headers.get("content-type", "application/json"))

    return app


def serve(model_path: str | Path, *, host: str = "127.0.0.1", port: int = 8080, api_key: str | None = None) -> int:
    """Run the server until interrupted (uvicorn, one process). Returns the exit code."""
    import sys

    import uvicorn

    api_key = api_key or os.environ.get("AUTOML_API_KEY") or None
    app = create_app(model_path, api_key)
    for line in app.state.version_warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(f"serving {model_path} on http://{host}:{port} (POST /predict, GET /health, docs at /docs)"
          + (" — API key required" if api_key else ""), file=sys.stderr, flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0
