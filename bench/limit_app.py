"""The physical reference for the accept path: Starlette + uvicorn, one INSERT and
commit into SQLite (WAL, synchronous=FULL) per request, nothing else."""

import json
import sqlite3
import sys
import tempfile
import uuid

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

db = sqlite3.connect(tempfile.mktemp(suffix=".db"), check_same_thread=False, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE e (id TEXT PRIMARY KEY, body TEXT, status TEXT)")


async def accept(request: Request) -> JSONResponse:
    body = await request.json()
    eid = str(uuid.uuid4())
    db.execute("BEGIN")
    db.execute("INSERT INTO e VALUES (?,?,?)", (eid, json.dumps(body), "queued"))
    db.execute("COMMIT")
    return JSONResponse({"id": eid, "status": "queued"}, status_code=201)


app = Starlette(routes=[Route("/accept", accept, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
