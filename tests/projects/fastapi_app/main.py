from contextlib import asynccontextmanager

from fastapi import FastAPI, Request


@asynccontextmanager
async def lifespan(app: FastAPI):
    # Runs before the first request and after the last one, in every worker.
    yield {"started_by": "lifespan"}


app = FastAPI(lifespan=lifespan)


@app.get("/")
async def root(request: Request):
    return {"message": "Hello World", "started_by": request.state.started_by}


@app.get("/items/{item_id}")
async def read_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}
