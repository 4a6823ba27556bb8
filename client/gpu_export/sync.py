"""Client: AsyncClient's API, blocking. Each call runs the async method on a private event-loop thread,
so both clients are one implementation; callbacks (`progress`, `on_event`) run on that thread."""

from __future__ import annotations

import asyncio
import inspect
import threading
from concurrent.futures import Future

from .aio import AsyncClient


class Client:
    def __init__(self, *args, **kwargs):
        """The arguments of AsyncClient."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gpu-export-client", daemon=True)
        self._thread.start()
        self._async = AsyncClient(*args, **kwargs)

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._thread.is_alive():
            self._run(self._async.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    @property
    def token(self):
        return self._async.token

    @token.setter
    def token(self, value):
        self._async.token = value

    def __getattr__(self, name: str):
        member = getattr(self._async, name)
        if inspect.iscoroutinefunction(member):
            return lambda *args, **kwargs: self._run(member(*args, **kwargs))
        if inspect.isasyncgenfunction(member):
            return lambda *args, **kwargs: self._iterate(member(*args, **kwargs))
        return member

    def _run(self, coroutine):
        future: Future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result()
        except BaseException:  # KeyboardInterrupt included: stop the coroutine too
            future.cancel()
            raise

    def _iterate(self, generator):
        try:
            while True:
                try:
                    yield self._run(generator.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            self._run(generator.aclose())
