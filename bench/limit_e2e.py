"""The physical reference for trigger → result with a process per execution: one
Starlette app that commits the trigger durably (SQLite WAL, synchronous=FULL), forks
a child that calls the function and writes its JSON result to a pipe, commits the
result durably, and answers. No queue, no authentication, no validation: a floor.

    python bench/limit_e2e.py PORT [DATABASE]     # POST /run with the inputs as JSON
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import uuid

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

path = sys.argv[2] if len(sys.argv) > 2 else tempfile.mktemp(suffix=".db")
db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
db.execute("PRAGMA journal_mode=WAL")
db.execute("PRAGMA synchronous=FULL")
db.execute("CREATE TABLE e (id TEXT PRIMARY KEY, inputs TEXT, status TEXT, result TEXT)")


def hello(name: str = "world") -> dict[str, str]:
    return {"greeting": f"Hello, {name}!"}


def _commit(sql: str, *params: str) -> None:
    db.execute("BEGIN")
    db.execute(sql, params)
    db.execute("COMMIT")


async def run(request: Request) -> JSONResponse:
    inputs = await request.json()
    eid = str(uuid.uuid4())
    _commit("INSERT INTO e VALUES (?, ?, 'queued', NULL)", eid, json.dumps(inputs))
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        os.write(w, json.dumps(hello(**inputs)).encode())
        os._exit(0)
    os.close(w)
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    chunks: list[bytes] = []

    def readable() -> None:
        data = os.read(r, 65536)
        if data:
            chunks.append(data)
            return
        loop.remove_reader(r)
        os.close(r)
        done.set_result(b"".join(chunks))

    loop.add_reader(r, readable)
    out = await done
    os.waitpid(pid, 0)  # noqa: ASYNC222 (the child has exited: its pipe is closed)
    _commit("UPDATE e SET status = 'succeeded', result = ? WHERE id = ?", out.decode(), eid)
    return JSONResponse({"id": eid, "status": "succeeded", "result": json.loads(out)})


app = Starlette(routes=[Route("/run", run, methods=["POST"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
