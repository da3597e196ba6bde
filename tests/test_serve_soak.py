"""benchmarks/serve_soak.py: a ~20 s soak of the real server passes with a full report; a server that answers 5xx
and leaks think tags makes it fail, naming both."""
import json, subprocess, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

SOAK = Path(__file__).parents[1] / 'benchmarks' / 'serve_soak.py'


def soak(tmp_path, *args):
    out = tmp_path / 'report.json'
    cmd = [sys.executable, str(SOAK), '--json', str(out), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return p, json.loads(out.read_text()) if out.exists() else None


def test_soak_of_the_real_server_passes(tmp_path):
    p, rep = soak(tmp_path, '--minutes', '0.25', '--warmup', '5', '--concurrency', '6', '--seed', '1')
    assert p.returncode == 0, p.stdout + p.stderr[-3000:]
    assert '| 5xx | 0 | must be 0 |' in p.stdout and '| verdict | PASS |' in p.stdout, p.stdout
    assert rep['requests'] > 50, rep
    assert (rep['5xx'], rep['leaks'], rep['broken'], rep['stuck_after_drain']) == (0, 0, 0, 0), rep
    assert rep['bad_bodies'] > 0 and rep['4xx'] >= rep['bad_bodies'] - len(rep['bad_answered_2xx']), rep
    assert rep['disconnects'] > 0, rep
    assert rep['2xx'] > rep['4xx'], rep
    assert 0 < rep['latency_p50'] <= rep['latency_p99'], rep
    assert rep['rss_start_mib'] > 50 and rep['rss_end_mib'] > 50, rep
    assert rep['rss_growth_pct'] < 10, rep
    assert rep['server_alive'] is True, rep
    assert (rep['features']['n'], rep['features']['logprobs']) == ('used', 'used'), rep['features']


class Faulty(BaseHTTPRequestHandler):
    "Answers every third chat request 500 and puts think tags in `content` of the others."
    count = 0

    def log_message(self, *a): pass

    def reply(self, code, body: bytes, ctype='application/json'):
        self.send_response(code)
        self.send_header('content-type', ctype)
        self.send_header('content-length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == '/metrics':
            return self.reply(200, b'num_requests_running 0.0\nnum_requests_waiting 0.0\n', 'text/plain')
        self.reply(200, b'{"status": "ok"}')

    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get('content-length') or 0))
        Faulty.count += 1
        if Faulty.count % 3 == 0: return self.reply(500, b'{"error": {"message": "boom"}}')
        try: body = json.loads(raw)
        except ValueError: body = {}
        n = body.get('n', 1) if isinstance(body, dict) and isinstance(body.get('n'), int) else 1
        msg = {'role': 'assistant', 'content': '<think>sum</think>42', 'reasoning_content': None}
        if isinstance(body, dict) and body.get('stream') is True:
            chunks = [{'choices': [{'index': i, 'delta': {'content': msg['content']}}]} for i in range(n)]
            sse = ''.join(f'data: {json.dumps(c)}\n\n' for c in chunks) + 'data: [DONE]\n\n'
            return self.reply(200, sse.encode(), 'text/event-stream')
        self.reply(200, json.dumps({'choices': [{'index': i, 'message': msg} for i in range(n)]}).encode())


def test_soak_fails_on_5xx_and_leaks(tmp_path):
    srv = ThreadingHTTPServer(('127.0.0.1', 0), Faulty)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        url = f'http://127.0.0.1:{srv.server_port}'
        p, rep = soak(tmp_path, '--base-url', url, '--minutes', '0.03', '--warmup', '1', '--concurrency', '2')
    finally: srv.shutdown()
    assert p.returncode == 1, p.stdout + p.stderr[-3000:]
    assert rep['5xx'] > 0 and rep['leaks'] > 0, rep
    assert rep['bad_answered_2xx'], 'the faulty server accepts bad bodies: they are named'
    assert f"{rep['5xx']} 5xx responses" in p.stdout and f"{rep['leaks']} think-tag leaks" in p.stdout, p.stdout
    leak_lines = [l for l in p.stdout.splitlines() if l.startswith('leak: ')]
    assert leak_lines and all('content[' in l or 'content [' in l for l in leak_lines), p.stdout
