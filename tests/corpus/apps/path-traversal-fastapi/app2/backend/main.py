"""Reports portal: download the generated reports by file name."""

import os
from pathlib import Path

import uvicorn
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import PlainTextResponse

app = FastAPI(title="Reports")
REPORTS = Path(os.environ.get("TMPDIR", "/tmp")) / "reports"


@app.on_event("startup")
def write_reports() -> None:
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "q1.txt").write_text("Q1 revenue: 1200\n")
    (REPORTS / "q2.txt").write_text("Q2 revenue: 1350\n")


@app.get("/api/reports")
def list_reports():
    return {"reports": sorted(p.name for p in REPORTS.iterdir())}


@app.get("/api/reports/download", response_class=PlainTextResponse)
def download(document: str = Query(..., description="file name of the report")):
    path = os.path.realpath(os.path.join(REPORTS, document))
    if not path.startswith(str(REPORTS.resolve()) + os.sep) or not os.path.isfile(path):

        raise HTTPException(status_code=404, detail="no such report")
    with open(path) as handle:
        return handle.read()


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("BACKEND_PORT", 8000)))
