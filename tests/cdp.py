"""A small headless-Chromium driver for tests: the DevTools protocol over a WebSocket, standard library only.

Chromium is started with ``--remote-debugging-port=0`` (it picks a free port and writes it to
``DevToolsActivePort`` in its profile folder); one WebSocket to the browser carries every command, and
pages are attached in "flat" mode (each command names its page's session).  Nothing sleeps for a fixed
time: ``Page.wait_for`` polls a JavaScript expression until it is true or a timeout passes.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
NO_CHROMIUM = "chromium is not installed (Debian: apt-get install chromium); `make test` installs it"


class CDPError(RuntimeError):
    pass


class WebSocket:
    """A minimal RFC 6455 client: text frames out (masked), text frames in, pings answered."""

    def __init__(self, host: str, port: int, path: str, timeout: float):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode("ascii"))
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise CDPError("the browser closed the connection during the WebSocket handshake")
            head += chunk
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101"):
            raise CDPError(f"WebSocket handshake refused: {head[:200]!r}")

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise CDPError("the browser closed the DevTools connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        size = len(payload)
        if size < 126:
            header += bytes([0x80 | size])
        elif size < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", size)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", size)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send(self, text: str) -> None:
        self._send_frame(0x1, text.encode("utf-8"))

    def receive(self, timeout: float) -> str:
        """The next text message (fragments joined); socket.timeout when none comes in time."""
        self.sock.settimeout(timeout)
        message = b""
        while True:
            first, second = self._read(2)
            opcode, final = first & 0x0F, bool(first & 0x80)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._read(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._read(8))[0]
            mask = self._read(4) if second & 0x80 else None
            payload = self._read(size)
            if mask:
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            if opcode == 0x9:  # ping
                self._send_frame(0xA, payload)
                continue
            if opcode == 0x8:
                raise CDPError("the browser closed the DevTools connection")
            if opcode in (0x0, 0x1, 0x2):
                message += payload
                if final:
                    return message.decode("utf-8")

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Browser:
    """Headless Chromium with a fresh profile, nothing that reaches the network on its own, and the
    DevTools protocol on a local port.  Use as a context manager: the browser is always stopped."""

    def __init__(self, profile: Path, *, timeout: float = 60.0, window: str = "1280,900"):
        if CHROMIUM is None:
            raise CDPError(NO_CHROMIUM)
        self.timeout = timeout
        self.profile = Path(profile)
        self.profile.mkdir(parents=True, exist_ok=True)
        self.log = self.profile / "chromium.log"
        self._next_id = 0
        self.events: list[dict] = []
        argv = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--mute-audio",
            "--autoplay-policy=no-user-gesture-required",
            f"--window-size={window}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            "about:blank",
        ]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            port, path = self._devtools_address()
            self.ws = WebSocket("127.0.0.1", port, path, timeout)
        except BaseException:
            self._stop_process()
            raise

    def _devtools_address(self) -> tuple[int, str]:
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise CDPError(f"chromium exited with {self.proc.returncode}: {self.log_tail()}")
            with contextlib.suppress(OSError, ValueError):
                lines = active.read_text(encoding="ascii").split("\n")
                if len(lines) >= 2 and lines[1].startswith("/devtools/"):
                    return int(lines[0]), lines[1].strip()
            time.sleep(0.05)
        raise CDPError(f"chromium did not open its DevTools port within {self.timeout:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(encoding="utf-8", errors="replace")[-2000:]
        return ""

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CDPError(f"no answer to {method} within {self.timeout:.0f} s")
            reply = json.loads(self.ws.receive(left))
            if reply.get("id") == ident:
                if "error" in reply:
                    raise CDPError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)
                del self.events[:-500]  # only the recent ones matter

    def new_page(self) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, session)

    def _stop_process(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ws.sock.settimeout(5)
            self.ws.send(json.dumps({"id": 0, "method": "Browser.close", "params": {}}))
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        self.ws.close()
        self._stop_process()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# Key events as the DevTools protocol wants them: key, code, Windows virtual key code, modifiers (8 = shift).
_KEYS = {
    "[": ("[", "BracketLeft", 219, 0),
    "]": ("]", "BracketRight", 221, 0),
    "{": ("{", "BracketLeft", 219, 8),
    "}": ("}", "BracketRight", 221, 8),
    "ArrowDown": ("ArrowDown", "ArrowDown", 40, 0),
    "ArrowUp": ("ArrowUp", "ArrowUp", 38, 0),
}


class Page:
    def __init__(self, browser: Browser, session: str):
        self.browser = browser
        self.session = session
        self.send("Page.enable")
        self.send("Runtime.enable")

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.browser.send(method, params, self.session)

    def goto(self, url: str) -> None:
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise CDPError(f"could not open {url}: {result['errorText']}")
        self.wait_for("document.readyState === 'complete'")

    def evaluate(self, expression: str, *, gesture: bool = False, await_promise: bool = False) -> Any:
        result = self.send(
            "Runtime.evaluate",
            {
                "expression": expression,
                "returnByValue": True,
                "userGesture": gesture,
                "awaitPromise": await_promise,
            },
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise CDPError(f"{expression!r} threw: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, *, what: str | None = None) -> Any:
        """Poll ``expression`` until it is truthy; its value, or CDPError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        delay = 0.02
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise CDPError(f"timed out after {timeout:.0f} s waiting for {what or expression}")
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    def press(self, key: str) -> None:
        """One key press (down, up) as the keyboard makes it: ``a``, ``[``, ``{`` (shift+[), ``ArrowDown``."""
        name, code, vk, modifiers = _KEYS.get(key) or (key, f"Key{key.upper()}", ord(key.upper()), 0)
        text = key if len(key) == 1 else ""
        down = {"type": "keyDown", "key": name, "code": code, "windowsVirtualKeyCode": vk, "modifiers": modifiers}
        if text:
            down.update(text=text, unmodifiedText=text)
        self.send("Input.dispatchKeyEvent", down)
        self.send(
            "Input.dispatchKeyEvent",
            {"type": "keyUp", "key": name, "code": code, "windowsVirtualKeyCode": vk, "modifiers": modifiers},
        )

    def screenshot(self, path: Path, *, quality: int = 70) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "jpeg", "quality": quality})["data"]
        Path(path).write_bytes(base64.b64decode(data))
        return Path(path)


@contextlib.contextmanager
def browser(profile: Path, **kwargs) -> Iterator[Browser]:
    with Browser(profile, **kwargs) as started:
        yield started
