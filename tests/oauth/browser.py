"""Headless Chromium (Debian's ``chromium`` package) driven over the DevTools protocol with
aiohttp's websocket client: enough to open a page, wait for elements, type and click.

    async with Chromium.launch() as browser:
        page = await browser.new_page()
        await page.goto(url)
        await page.fill("input[type=password]", "secret")
        await page.click_text("button", "Sign in")
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import shutil
import subprocess
import tempfile
import time
from typing import Any

import aiohttp

DEVTOOLS = re.compile(r"DevTools listening on (ws://\S+)")


class BrowserError(AssertionError):
    pass


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Chromium:
    """One headless Chromium process with a fresh profile."""

    def __init__(self, process: subprocess.Popen[bytes], profile: str, ws_url: str) -> None:
        self.process = process
        self.profile = profile
        self.ws_url = ws_url
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    def launch(cls) -> Chromium:
        path = chromium_path()
        if path is None:
            raise BrowserError("chromium is not installed (apt-get install chromium; .ci/run does)")
        profile = tempfile.mkdtemp(prefix="pysky-chromium-")
        process = subprocess.Popen(
            [path, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        seen = b""
        while time.monotonic() < deadline:
            line = process.stderr.readline()
            seen += line
            match = DEVTOOLS.search(line.decode(errors="replace"))
            if match:
                return cls(process, profile, match.group(1))
            if not line and process.poll() is not None:
                break
        process.kill()
        raise BrowserError(f"chromium did not start: {seen.decode(errors='replace')[-2000:]}")

    async def __aenter__(self) -> Chromium:
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(self.ws_url, max_msg_size=0)
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        assert self.process.stderr is not None
        self.process.stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                if "error" in data:
                    future.set_exception(BrowserError(f"DevTools error: {data['error']}"))
                else:
                    future.set_result(data.get("result", {}))

    async def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        assert self._ws is not None
        message_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        message: dict[str, Any] = {"id": message_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        await self._ws.send_str(json.dumps(message))
        return await asyncio.wait_for(future, 30)

    async def new_page(self) -> Page:
        target = await self.send("Target.createTarget", {"url": "about:blank"})
        attached = await self.send("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True})
        page = Page(self, attached["sessionId"])
        await page.send("Page.enable")
        await page.send("Runtime.enable")
        return page


class Page:
    """One tab."""

    def __init__(self, browser: Chromium, session: str) -> None:
        self.browser = browser
        self.session = session

    async def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        return await self.browser.send(method, params, self.session)

    async def evaluate(self, expression: str) -> Any:
        result = await self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                      "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def goto(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})

    async def url(self) -> str:
        return str(await self.evaluate("location.href"))

    async def wait_for(self, js_condition: str, what: str, timeout: float = 20) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = await self.evaluate(js_condition)
            except BrowserError:
                value = None  # the page is navigating
            if value:
                return value
            if time.monotonic() > deadline:
                body = await self.evaluate("document.body ? document.body.innerText.slice(0, 1500) : ''")
                raise BrowserError(f"timed out waiting for {what} on {await self.url()}; page text:\n{body}")
            await asyncio.sleep(0.1)

    async def fill(self, selector: str, value: str) -> None:
        """Type into an input the way React notices (native setter, then an input event)."""
        await self.wait_for(f"!!document.querySelector({json.dumps(selector)})", selector)
        await self.evaluate(f"""(() => {{
            const el = document.querySelector({json.dumps(selector)});
            const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set;
            el.focus(); setter.call(el, {json.dumps(value)});
            el.dispatchEvent(new Event('input', {{bubbles: true}}));
            el.dispatchEvent(new Event('change', {{bubbles: true}}));
            return true; }})()""")

    async def click_text(self, selector: str, text: str) -> None:
        """Click the first enabled ``selector`` element whose text is ``text``."""
        finder = f"""[...document.querySelectorAll({json.dumps(selector)})].find(
            (el) => el.innerText.trim().toLowerCase() === {json.dumps(text.lower())} && !el.disabled)"""
        await self.wait_for(f"!!({finder})", f"{selector} {text!r}")
        await self.evaluate(f"({finder}).click()")
