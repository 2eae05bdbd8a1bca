#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol (standard library only: a minimal
WebSocket client below) to check neuroscope's HTML outputs as a user sees them.

    browser_check.py scatter PAGE.html INDEX EXPECTED_LABEL   # hover point INDEX, then the switch
    browser_check.py screenshot PAGE.html OUT.png [WIDTH HEIGHT]

`scatter` moves the real mouse (Input.dispatchMouseEvent) onto the circle with data-i=INDEX
and checks that the tooltip shows an image and "#INDEX: EXPECTED_LABEL"; then clicks the
"clusters" button and checks that the points take the cluster colours and the legends swap.
Prints one JSON line with what it saw; exits 1 on a failed check, 2 when Chromium is missing.
"""
import base64, json, os, re, shutil, socket, subprocess, sys, tempfile, time, urllib.request


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


class WebSocket:
    """Just enough RFC 6455 for CDP: text frames, client masking, continuation frames."""

    def __init__(self, url):
        m = re.match(r"ws://([^:/]+):(\d+)(/.*)", url)
        host, port, path = m.group(1), int(m.group(2)), m.group(3)
        self.sock = socket.create_connection((host, port), timeout=60)
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            head += self.sock.recv(1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"websocket handshake failed: {head!r}")
        self.next_id = 0

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise RuntimeError("websocket closed")
            buf += chunk
        return buf

    def send(self, text):
        data = text.encode()
        header = bytearray([0x81])
        n = len(data)
        if n < 126:
            header.append(0x80 | n)
        elif n < 65536:
            header.append(0x80 | 126)
            header += n.to_bytes(2, "big")
        else:
            header.append(0x80 | 127)
            header += n.to_bytes(8, "big")
        mask = os.urandom(4)
        header += mask
        self.sock.sendall(bytes(header) + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def recv(self):
        message = b""
        while True:
            b0, b1 = self._recv_exact(2)
            n = b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._recv_exact(2), "big")
            elif n == 127:
                n = int.from_bytes(self._recv_exact(8), "big")
            payload = self._recv_exact(n)
            opcode = b0 & 0x0F
            if opcode in (0x1, 0x0):
                message += payload
                if b0 & 0x80:
                    return message.decode()
            elif opcode == 0x8:
                raise RuntimeError("websocket closed by browser")

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.send(json.dumps({"id": my_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"script error: {r['exceptionDetails']}")
        return r["result"].get("value")


def open_page(path, width, height):
    chromium = find_chromium()
    if chromium is None:
        print(json.dumps({"skipped": "no chromium on PATH (Debian: apt-get install chromium)"}))
        sys.exit(2)
    profile = tempfile.mkdtemp(prefix="ns-chromium-")
    proc = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--hide-scrollbars", "--remote-debugging-port=0", f"--user-data-dir={profile}",
         f"--window-size={width},{height}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    port = None
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stderr.readline()
        m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if m:
            port = int(m.group(1))
            break
    if port is None:
        proc.kill()
        raise RuntimeError("chromium did not start its DevTools endpoint")
    pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    page = next(p for p in pages if p.get("type") == "page")
    ws = WebSocket(page["webSocketDebuggerUrl"])
    ws.call("Page.enable")
    ws.call("Emulation.setDeviceMetricsOverride", width=width, height=height,
            deviceScaleFactor=1, mobile=False)
    ws.call("Page.navigate", url="file://" + os.path.abspath(path))
    for _ in range(600):
        if ws.js("document.readyState") == "complete":
            break
        time.sleep(0.05)
    return proc, profile, ws


def close(proc, profile):
    proc.kill()
    proc.wait()
    shutil.rmtree(profile, ignore_errors=True)


def mouse(ws, kind, x, y, **extra):
    ws.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, **extra)


def check_scatter(path, index, expected_label):
    proc, profile, ws = open_page(path, 1000, 800)
    seen = {}
    try:
        rect = ws.js(f"""(function(){{var c=document.querySelector('g.ns-points circle[data-i="{index}"]');
            c.scrollIntoView({{block:'center'}}); var r=c.getBoundingClientRect();
            return [r.left+r.width/2, r.top+r.height/2, c.getAttribute('fill')];}})()""")
        x, y, fill_before = rect
        seen["tip_before"] = ws.js("getComputedStyle(document.querySelector('.ns-tip')).display")
        seen["controls"] = ws.js("getComputedStyle(document.querySelector('.ns-controls')).display")
        mouse(ws, "mouseMoved", x - 30, y - 30)
        mouse(ws, "mouseMoved", x, y)
        time.sleep(0.1)
        seen["tip_after"] = ws.js("getComputedStyle(document.querySelector('.ns-tip')).display")
        seen["tip_label"] = ws.js("document.querySelector('.ns-tip-label').textContent")
        seen["tip_img"] = ws.js("(document.querySelector('.ns-tip img').getAttribute('src')||'').slice(0,22)")
        seen["tip_img_loaded"] = ws.js("document.querySelector('.ns-tip img').naturalWidth")
        b = ws.js("""(function(){var b=document.querySelector('button[data-mode=clusters]');
            var r=b.getBoundingClientRect();return [r.left+r.width/2, r.top+r.height/2];})()""")
        mouse(ws, "mouseMoved", b[0], b[1])
        mouse(ws, "mousePressed", b[0], b[1], button="left", clickCount=1)
        mouse(ws, "mouseReleased", b[0], b[1], button="left", clickCount=1)
        time.sleep(0.1)
        seen["fill_before"] = fill_before
        seen["fill_after"] = ws.js(f"document.querySelector('g.ns-points circle[data-i=\"{index}\"]').getAttribute('fill')")
        seen["legend_clusters"] = ws.js("document.querySelector('.ns-legend-clusters').getAttribute('display')")
        seen["legend_labels"] = ws.js("document.querySelector('.ns-legend-labels').getAttribute('display')")
    finally:
        close(proc, profile)
    ok = (seen["tip_before"] == "none" and seen["controls"] == "block"
          and seen["tip_after"] == "block"
          and seen["tip_label"].startswith(f"#{index}: {expected_label}")
          and seen["tip_img"] == "data:image/png;base64,"
          and (seen["tip_img_loaded"] or 0) > 0
          and seen["fill_after"] != seen["fill_before"]
          and seen["legend_clusters"] == "inline" and seen["legend_labels"] == "none")
    seen["ok"] = ok
    print(json.dumps(seen))
    sys.exit(0 if ok else 1)


def screenshot(path, out, width=1100, height=1400):
    proc, profile, ws = open_page(path, width, height)
    try:
        time.sleep(0.3)
        shot = ws.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        with open(out, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        h = ws.js("document.documentElement.scrollHeight")
    finally:
        close(proc, profile)
    print(json.dumps({"screenshot": out, "page_height": h}))


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "scatter":
        check_scatter(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    elif len(sys.argv) >= 4 and sys.argv[1] == "screenshot":
        dims = [int(v) for v in sys.argv[4:6]] if len(sys.argv) >= 6 else []
        screenshot(sys.argv[2], sys.argv[3], *dims)
    else:
        print(__doc__)
        sys.exit(64)
