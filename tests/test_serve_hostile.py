"""Hostile bodies against a real `reasoning-nb serve` process: each gets a 4xx in OpenAI's error shape whose message
names the problem, never a 500, and the server keeps serving (issue 15, item 1). The parsing rules themselves are
shown in lesson 04_2 (`protocol.parse_json_body`)."""
import json, os, socket

import httpx
import pytest

from reasoning_nb.serve import ServerProcess

U = [{'role': 'user', 'content': 'What is 2+3?'}]
J = lambda **kw: json.dumps({'messages': U, **kw}).encode()
JSON = {'content-type': 'application/json'}


@pytest.fixture(scope='module')
def srv():
    if os.environ.get('REASONING_NB_TEST_MODEL'): path = os.environ['REASONING_NB_TEST_MODEL']
    else:
        from reasoning_nb.runs import cached_run
        path = str(cached_run('tiny'))
    with ServerProcess(path, '--served-model-name', 'tiny', '--max-concurrency', 4) as s: yield s


# (name, body, extra headers, status, words the message must contain)
HOSTILE = [
    ('array nested 100,000 deep', b'[' * 100_000, {}, 400, 'nested'),
    ('object nested 50,000 deep', b'{"a":' * 50_000 + b'1' + b'}' * 50_000, {}, 400, 'nested'),
    ('content nested 40 deep', b'{"messages": [{"role": "user", "content": ' + b'[' * 40 + b']' * 40 + b'}]}', {}, 400,
     'more than 32 levels'),
    ('float 1e999', J()[:-1] + b', "temperature": 1e999}', {}, 400, 'out of range'),
    ('float -1e999', J()[:-1] + b', "top_p": -1e999}', {}, 400, 'out of range'),
    ('400-digit integer', J()[:-1] + b', "max_tokens": ' + b'7' * 400 + b'}', {}, 400, '400 digits'),
    ('NaN literal', J()[:-1] + b', "temperature": NaN}', {}, 400, 'NaN'),
    ('Infinity literal', J()[:-1] + b', "temperature": Infinity}', {}, 400, 'Infinity'),
    ('-Infinity literal', J()[:-1] + b', "seed": -Infinity}', {}, 400, 'Infinity'),
    ('top-level 1e999', b'1e999', {}, 400, 'out of range'),
    ('lone high surrogate', b'{"messages": [{"role": "user", "content": "a\\ud800b"}]}', {}, 400, 'lone surrogate'),
    ('lone low surrogate in model', J()[:-1] + b', "model": "\\udc00"}', {}, 400, 'model contains a lone surrogate'),
    ('NUL in content', b'{"messages": [{"role": "user", "content": "a\\u0000b"}]}', {}, 400, 'NUL'),
    ('NUL in a key', J()[:-1] + b', "x\\u0000": 1}', {}, 400, 'NUL'),
    ('raw NUL byte', b'{"messages": \x00[]}', {}, 400, 'not valid JSON'),
    ('duplicate top-level key', b'{"messages": [], "messages": ' + json.dumps(U).encode() + b'}', {}, 400,
     "duplicate key 'messages'"),
    ('duplicate nested key', b'{"messages": [{"role": "user", "role": "system", "content": "x"}]}', {}, 400,
     "duplicate key 'role'"),
    ('text/plain', J(), {'content-type': 'text/plain'}, 415, "Content-Type 'text/plain'"),
    ('form-urlencoded', b'messages=hi', {'content-type': 'application/x-www-form-urlencoded'}, 415, 'Content-Type'),
    ('multipart', J(), {'content-type': 'multipart/form-data; boundary=x'}, 415, 'multipart/form-data'),
    ('gzip encoding', J(), {'content-encoding': 'gzip'}, 415, "Content-Encoding 'gzip'"),
    ('stops half way', J()[:20], {}, 400, 'ends before the JSON does'),
    ('stops inside a string', b'{"messages": "abc', {}, 400, 'ends before the JSON does: Unterminated string'),
    ('empty body', b'', {}, 400, 'empty'),
    ('whitespace body', b' \n\t ', {}, 400, 'empty'),
    ('invalid UTF-8', b'{"messages": "\xff\xfe"}', {}, 400, 'UTF-8'),
    ('trailing garbage', J() + b' x', {}, 400, 'Extra data'),
    ('single quotes', b"{'messages': []}", {}, 400, 'not valid JSON'),
    ('trailing comma', J()[:-1] + b',}', {}, 400, 'not valid JSON'),
    ('top-level null', b'null', {}, 400, 'JSON object'),
    ('top-level string', b'"messages"', {}, 400, 'JSON object'),
    ('boolean temperature', J(temperature=True), {}, 400, "'temperature'"),
    ('declared over 1 MiB', J(), {'content-length': str(2 << 20)}, 413, 'over 1048576 bytes'),
    ('body over 1 MiB', J(user='x' * (2 << 20)), {}, 413, 'over 1048576 bytes'),
    ('prompt past the context', J(messages=[{'role': 'user', 'content': '1+1 ' * 3000}]), {}, 400, 'context'),
    ('logit_bias outside the vocabulary', J(logit_bias={'999999': 5}), {}, 400, 'vocabulary'),
    ('n of a million', J(n=10**6), {}, 400, "'n'"),
    ('tools', J(tools=[{'type': 'function', 'function': {'name': 'f'}}]), {}, 400, "'tools' is not supported"),
]


@pytest.mark.parametrize('name,body,headers,status,words', HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_body_gets_4xx_naming_it(srv, name, body, headers, status, words):
    h = {**JSON, **headers}
    if 'content-length' in headers:   # a declared length the body does not have: send only the headers' claim
        r = httpx.post(srv.base_url + '/chat/completions', content=body, headers={k: v for k, v in h.items() if k != 'content-length'})
        with socket.create_connection(('127.0.0.1', srv.port), timeout=30) as s:
            s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
                      b'Content-Length: ' + headers['content-length'].encode() + b'\r\nConnection: close\r\n\r\n')
            raw = b''
            while chunk := s.recv(65536): raw += chunk
        head, _, payload = raw.partition(b'\r\n\r\n')
        code, err = int(head.split()[1]), json.loads(payload)['error']
    else:
        r = httpx.post(srv.base_url + '/chat/completions', content=body, headers=h, timeout=60)
        code, err = r.status_code, r.json()['error']
    assert code == status, (name, code, err)
    assert set(err) == {'message', 'type', 'param', 'code'} and err['type'] == 'invalid_request_error', err
    assert words.lower() in err['message'].lower(), (name, err['message'])


def test_table_is_large_enough():
    assert len(HOSTILE) >= 30, len(HOSTILE)


def test_body_cut_by_the_client_then_server_still_serves(srv):
    "A client that declares 400 bytes, sends 50 and closes: no crash, no 500 counted, and the next request works."
    with socket.create_connection(('127.0.0.1', srv.port), timeout=30) as s:
        s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
                  b'Content-Length: 400\r\n\r\n' + J()[:50])
        s.shutdown(socket.SHUT_WR)
        s.settimeout(10)
        try: s.recv(65536)
        except (ConnectionError, socket.timeout): pass
    r = httpx.post(srv.base_url + '/chat/completions', json={'messages': U, 'max_tokens': 8}, timeout=60)
    assert r.status_code == 200 and r.json()['choices'][0]['message']['content'] is not None, r.text


def test_server_keeps_serving_and_never_answered_500(srv):
    ok = httpx.post(srv.base_url + '/chat/completions', json={'messages': U, 'max_tokens': 16}, timeout=60)
    assert ok.status_code == 200, ok.text
    assert ok.json()['usage']['completion_tokens'] > 0
    fine = httpx.post(srv.base_url + '/chat/completions', content=b'\xef\xbb\xbf' + J(max_tokens=4), headers=JSON, timeout=60)
    assert fine.status_code == 200, fine.text   # a UTF-8 byte-order mark is allowed (RFC 8259 lets parsers ignore it)
    metrics = httpx.get(srv.url + '/metrics').text
    assert 'status="500"' not in metrics and 'status="4' in metrics, [l for l in metrics.splitlines() if 'http_requests' in l]
