"""The floor bench/api measures the API against: a FastAPI app with one endpoint and nothing else, which
bench/api serves with `python -m uvicorn bench.bare_api:app --workers 1` beside the API."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def bare() -> dict[str, str]:
    return {"status": "ok"}
